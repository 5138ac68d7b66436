"""The SetFit recipe (Tunstall et al., 2022) as a baseline, written out here so the benchmark needs no SetFit install:
the sentence encoder fine-tuned on label pairs with the cosine-similarity loss over mean-pooled embeddings
(20 iterations, batch 16, LR 2e-5, one epoch: SetFit's defaults), then logistic regression on the embeddings.

    python benchmarks/setfit_style.py TRAIN.jsonl TEST.jsonl [--model minilm-l6] [--seed 0]

prints one JSON line: accuracy, macro-F1, fit seconds, and the predictions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from nichetune.data.readers import read_json_lines
from nichetune.models.resolve import resolve_model
from nichetune.quiet import quiet_libraries
from nichetune.stats.classification import classification_metrics
from nichetune.train.contrastive import pair_indices

ITERATIONS, BATCH, LR, MAX_LENGTH = 20, 16, 2e-5, 256


def _embed(model, tok, texts: list[str], grad: bool = False) -> torch.Tensor:
    enc = tok(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
    with torch.set_grad_enabled(grad):
        hidden = model(**enc).last_hidden_state  # (B, T, d)
        mask = enc["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def setfit_style(train: list[dict], test_texts: list[str], labels: list[str], *, model_name: str = "minilm-l6",
                 seed: int = 0) -> tuple[np.ndarray, float]:
    """Predictions (label ids) for ``test_texts`` and the fit seconds."""
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(seed)
    path = resolve_model(model_name).path
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path, use_safetensors=True)
    start = time.perf_counter()
    texts = [r["text"] for r in train]
    y = [labels.index(r["label"]) for r in train]
    pairs = pair_indices(y, ITERATIONS, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    model.train()
    for i in range(0, len(pairs), BATCH):
        chunk = pairs[i : i + BATCH]
        u = _embed(model, tok, [texts[a] for a, _, _ in chunk], grad=True)
        v = _embed(model, tok, [texts[b] for _, b, _ in chunk], grad=True)
        target = torch.tensor([t for _, _, t in chunk])
        loss = torch.nn.functional.mse_loss(torch.nn.functional.cosine_similarity(u, v), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    train_emb = torch.cat([_embed(model, tok, texts[i : i + 64]) for i in range(0, len(texts), 64)]).numpy()
    head = LogisticRegression(max_iter=2000).fit(train_emb, y)
    fit_s = time.perf_counter() - start
    test_emb = torch.cat([_embed(model, tok, test_texts[i : i + 64]) for i in range(0, len(test_texts), 64)]).numpy()
    return head.predict(test_emb), fit_s


def main() -> int:
    quiet_libraries()  # as the CLI does: torchao's CUDA-library notices would bury the figures
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train")
    p.add_argument("test")
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    train, test = read_json_lines(args.train), read_json_lines(args.test)
    labels = sorted({r["label"] for r in train} | {r["label"] for r in test})
    pred, fit_s = setfit_style(train, [r["text"] for r in test], labels, model_name=args.model, seed=args.seed)
    y = np.array([labels.index(r["label"]) for r in test])
    m = classification_metrics(y, pred, labels)
    print(json.dumps({"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "fit_s": round(fit_s, 1),
                      "predictions": [labels[i] for i in pred]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
