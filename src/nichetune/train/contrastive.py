"""Few-shot classification: a contrastive sentence-pair stage before the head trains (SetFit's idea, Tunstall et al.,
2022, built on this package's own pieces, no SetFit dependency).

Each iteration draws, for every training row, one row of the same label (target similarity 1) and one of another
label (target 0). The encoder learns to place same-label texts together by the cosine-similarity loss on the
representation its classification head reads (the pooler output where the model has one, else the mean over
tokens), with the recipe's method deciding which weights move. A handful of examples per class then gives the head
well-separated inputs. Pairs multiply the data: 8 rows of 3 labels, 20 iterations, 960 pairs.

With ``train.label_anchors`` each label whose name reads as words (``positive``, ``business``, ``side_effects``;
not ``LABEL_3`` or ``42``) also joins the pairs as a row of its own label, its name as the text. The pretrained
encoder already places a review near "negative" more often than near "positive" (zero-shot similarity); the anchors
keep that knowledge in the shaped space, where 8 rows a label are otherwise all it learns from.

``fit_head_logistic`` then fits the head's output layer as SetFit does: logistic regression, to convergence, on the
inputs that layer reads from the shaped encoder, written into the layer (so the run stays a plain transformers
classifier that every export format reads). A fresh head trained by a few gradient steps on so few rows stays
far from that optimum.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from ..models.task_model import body, output_layer
from ..tasks.scoring import autocast_for
from ..truncation import encode_ids


def pair_indices(labels: list[int], iterations: int, seed: int) -> list[tuple[int, int, float]]:
    """``(i, j, target)`` pairs: per iteration and row ``i``, one positive (same label, not ``i`` itself where the
    label has another row) and one negative (another label). Labels with one row pair with themselves."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    by_label = {c: np.flatnonzero(labels_arr == c) for c in set(labels)}
    pairs = []
    for _ in range(iterations):
        for i, c in enumerate(labels):
            same = by_label[c][by_label[c] != i]
            pairs.append((i, int(rng.choice(same)) if len(same) else i, 1.0))
            other = np.flatnonzero(labels_arr != c)
            if len(other):
                pairs.append((i, int(rng.choice(other)), 0.0))
    rng.shuffle(pairs)
    return [(int(i), int(j), float(t)) for i, j, t in pairs]


def _embed(encoder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    out = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    pooled = getattr(out, "pooler_output", None)
    if pooled is not None:
        return pooled.float()
    mask = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
    return (out.last_hidden_state.float() * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def contrastive_stage(model, tokenizer, rows: list[dict], labels: list[str], *, max_length: int, iterations: int,
                      lr: float, batch_size: int, seed: int, dtype, device: str) -> dict:
    """Train ``model``'s trainable encoder weights on label pairs of ``rows``; returns the pairs, steps and the mean
    loss of the first and last tenth of steps."""
    from ..train.optim import build_optimizer

    index = {name: i for i, name in enumerate(labels)}
    ids = encode_ids(tokenizer, [r["text"] for r in rows], max_length)
    pairs = pair_indices([index[r["label"]] for r in rows], iterations, seed)
    encoder = body(model)
    cfg = _StageConfig(lr)
    optimizer = build_optimizer(model, cfg)
    pad = tokenizer.pad_token_id or 0
    losses = []
    started = time.perf_counter()
    model.train()
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        left = _pad([ids[i] for i, _, _ in chunk], pad, device)
        right = _pad([ids[j] for _, j, _ in chunk], pad, device)
        target = torch.tensor([t for _, _, t in chunk], device=device)
        with autocast_for(dtype, device):
            u, v = _embed(encoder, left), _embed(encoder, right)
        loss = torch.nn.functional.mse_loss(torch.nn.functional.cosine_similarity(u, v), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    tenth = max(1, len(losses) // 10)
    summary = {"pairs": len(pairs), "steps": len(losses), "loss_first": float(np.mean(losses[:tenth])),
               "loss_last": float(np.mean(losses[-tenth:])), "seconds": round(time.perf_counter() - started, 2)}
    print(f"contrastive stage: {summary['pairs']} pairs, {summary['steps']} steps, cosine loss "
          f"{summary['loss_first']:.3f} -> {summary['loss_last']:.3f}", file=sys.stderr)
    return summary


def anchors_for(model, tokenizer, rows: list[dict], labels: list[str], wording: str, max_length: int) -> list[dict]:
    """``train.label_anchors``' rows: each label's name (``wording`` "name"), or the name in the template under
    which ``model``'s encoder, before any training, finds ``rows``' labels likeliest ("chosen": the zero-shot
    baseline's wording, ``infer.label_wording``; read with dropout off)."""
    from ..data.label_words import anchor_rows

    if wording == "name":
        return anchor_rows(labels)
    from ..infer.classify import sentence_vectors
    from ..infer.label_wording import choose_wording

    was_training = model.training
    model.eval()
    try:
        chosen = choose_wording(lambda texts: sentence_vectors(model, tokenizer, texts, max_length=max_length)[0],
                                rows, labels)
    finally:
        model.train(was_training)
    return anchor_rows(labels, chosen.template if chosen else "{}")


def blend_with_pretrained(spec, model, fresh_start: bool, refit_head) -> None:
    """``train.wise_from: pretrained``: the WiSE-FT start is the body as it is now, before the pair stage (the output
    layer excluded: it has no pretrained weights), and ``refit_head(model)`` fits the head again on the blend.
    ``spec`` is the loop's ``FitSpec``; a resumed run takes its start from the checkpoint instead."""
    layer = output_layer(model)
    head = {f"{name}.{p}" for name, m in model.named_modules() if m is layer for p, _ in m.named_parameters()}
    spec.blend_start = {n: p.detach().clone() for n, p in model.named_parameters() if n not in head} \
        if fresh_start else None
    spec.after_blend = refit_head


def fit_head_logistic(model, tokenizer, rows: list[dict], labels: list[str], *, max_length: int, dtype,
                      device: str, c: float = 1.0) -> dict:
    """Fit ``model``'s output layer by L2 logistic regression (sklearn, inverse strength ``c``) on the inputs it
    reads for ``rows`` (dropout off), and write the coefficients into it. Returns the training accuracy and seconds.
    """
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    x = head_inputs(model, tokenizer, [r["text"] for r in rows], max_length=max_length, dtype=dtype, device=device)
    index = {name: i for i, name in enumerate(labels)}
    y = np.array([index[r["label"]] for r in rows])
    head = LogisticRegression(C=c, max_iter=5000).fit(x, y)
    weight, bias = logistic_to_softmax(head.coef_, head.intercept_, head.classes_, len(labels))
    layer = output_layer(model)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=layer.weight.dtype))
        if layer.bias is not None:
            layer.bias.copy_(torch.as_tensor(bias, dtype=layer.bias.dtype))
    summary = {"rows": len(rows), "train_accuracy": round(float(head.score(x, y)), 4), "c": c,
               "seconds": round(time.perf_counter() - started, 2)}
    print(f"head fitted by logistic regression on {len(rows)} rows (training accuracy "
          f"{summary['train_accuracy']:.3f})", file=sys.stderr)
    return summary


def head_inputs(model, tokenizer, texts: list[str], *, max_length: int, dtype, device: str,
                batch_size: int = 32) -> np.ndarray:
    """(N, d) float64: what the output layer reads for each text, in eval mode (no dropout)."""
    from ..length_chunks import length_chunks
    from ..truncation import encode_batch

    seen: list[torch.Tensor] = []
    hook = output_layer(model).register_forward_hook(lambda _m, args, _o: seen.append(args[0].detach().float().cpu()))
    x = None
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast_for(dtype, device):
            for idx in length_chunks([len(t) for t in texts], batch_size):
                seen.clear()
                model(**encode_batch(tokenizer, [texts[i] for i in idx], max_length).to(device))
                if x is None:
                    x = np.zeros((len(texts), seen[-1].shape[-1]))
                x[idx] = seen[-1].numpy()
    finally:
        hook.remove()
        model.train(was_training)
    return x


def logistic_to_softmax(coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray,
                        n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_labels, d) weights and (n_labels,) biases whose softmax equals sklearn's logistic regression: a binary
    model's one row ``w`` becomes ``-w/2, +w/2``; labels it never saw get no weight and a bias far below the rest."""
    if coef.shape[0] == 1:  # binary: P(classes[1]) = sigmoid(w.x + b) = softmax([-z/2, z/2])[1]
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = np.zeros((n_labels, coef.shape[1]))
    bias = np.full(n_labels, float(intercept.min()) - 30.0)
    weight[classes], bias[classes] = coef, intercept
    return weight, bias


class _StageConfig:
    """The optimizer settings of the stage: one LR for every trainable weight, the usual no-decay groups."""

    def __init__(self, lr: float) -> None:
        self.lr, self.head_lr, self.layer_decay, self.group_lrs, self.weight_decay = lr, None, 1.0, {}, 0.01


def _pad(rows: list[list[int]], pad: int, device: str) -> dict[str, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    return {"input_ids": ids, "attention_mask": mask}
