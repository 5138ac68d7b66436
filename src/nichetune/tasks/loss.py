"""The one place for loss and token arithmetic.

A micro-batch returns a loss *sum* and the number of supervised units (tokens for causal LMs,
examples for classification). Under gradient accumulation and data parallelism the sums are
divided by the units of the *whole* optimisation step across every micro-batch and process,
so a step's gradient is the mean over its real tokens however the step is split up
(torchtune #2307 is the bug this avoids).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .encode import IGNORE


def token_loss_sum(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Sum of cross entropy over already-selected positions: logits (N, V), targets (N,); fp32 softmax."""
    return F.cross_entropy(logits.float(), targets, ignore_index=IGNORE, reduction="sum",
                           label_smoothing=label_smoothing)


LOGIT_CHUNK = 256  # positions whose (chunk, vocabulary) fp32 logits are held at once


def compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """The dtype a matrix product on ``tensor``'s device runs in here: autocast's where it is on."""
    kind = tensor.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else tensor.dtype


class _LinearCrossEntropy(torch.autograd.Function):
    """Cross-entropy sum of ``hidden @ weight.T`` without ever holding the (N, V) logits: the forward pass walks
    ``LOGIT_CHUNK`` positions at a time and, when gradients are wanted, computes them on the spot (the loss is a
    sum, so the backward pass only scales them by the incoming scalar)."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, label_smoothing: float, dtype: torch.dtype):
        w = weight.to(dtype)
        want_h, want_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h = torch.empty_like(hidden) if want_h else None  # every row is written below
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if want_w else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        eps, vocab = label_smoothing, weight.shape[0]
        for start in range(0, hidden.shape[0], LOGIT_CHUNK):
            h = hidden[start : start + LOGIT_CHUNK].to(dtype)
            t = targets[start : start + LOGIT_CHUNK]
            log_p = torch.log_softmax(h @ w.T, -1, dtype=torch.float32)  # (c, V): this chunk's one fp32 copy
            nll = -log_p.gather(1, t[:, None]).squeeze(1)
            total += ((1 - eps) * nll - eps * log_p.mean(-1)).sum() if eps else nll.sum()
            if want_h or want_w:
                grad = log_p.exp_()  # softmax, in place
                grad[torch.arange(len(t), device=t.device), t] -= 1 - eps
                if eps:
                    grad -= eps / vocab
                grad = grad.to(dtype)
                if want_h:
                    grad_h[start : start + LOGIT_CHUNK] = grad @ w
                if want_w:
                    grad_w += (grad.T @ h).float()
        ctx.save_for_backward(*(g for g in (grad_h, grad_w) if g is not None))
        ctx.has = (want_h, want_w)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx, grad_output):
        saved = iter(ctx.saved_tensors)
        grad_h = next(saved) * grad_output if ctx.has[0] else None
        grad_w = (next(saved) * grad_output).to(ctx.weight_dtype) if ctx.has[1] else None
        return grad_h, grad_w, None, None, None


def linear_cross_entropy_sum(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                             label_smoothing: float = 0.0) -> torch.Tensor:
    """``token_loss_sum(hidden @ weight.T, targets, label_smoothing)`` (hidden (N, d), weight (V, d)) with the
    logits made ``LOGIT_CHUNK`` rows at a time: the same value and gradients, without the (N, V) fp32 tensors a
    large vocabulary makes the largest thing in a training step."""
    return _LinearCrossEntropy.apply(hidden, weight, targets, label_smoothing, compute_dtype(hidden))


def causal_loss_sum(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0
                    ) -> tuple[torch.Tensor, int]:
    """Sum of next-token cross entropy over supervised positions: logits (B, T, V), labels (B, T)."""
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1])  # (B*(T-1), V)
    shift_labels = labels[:, 1:].reshape(-1)  # (B*(T-1),)
    count = int((shift_labels != IGNORE).sum())
    return token_loss_sum(shift_logits, shift_labels, label_smoothing), count


def causal_loss_per_example(logits: torch.Tensor, labels: torch.Tensor, segments: torch.Tensor
                            ) -> dict[int, tuple[float, int]]:
    """{segment id: (loss sum, tokens)}; ``segments`` (B, T) numbers the examples in a batch."""
    per_token = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), labels[:, 1:], ignore_index=IGNORE,
                                reduction="none")  # (B, T-1)
    seg = segments[:, 1:]
    valid = labels[:, 1:] != IGNORE
    out: dict[int, tuple[float, int]] = {}
    for s in torch.unique(seg[valid]).tolist():
        sel = valid & (seg == s)
        out[s] = (float(per_token[sel].sum()), int(sel.sum()))
    return out


def classification_loss_sum(logits: torch.Tensor, labels: torch.Tensor, *, weights: torch.Tensor | None = None,
                            class_weights: torch.Tensor | None = None, label_smoothing: float = 0.0
                            ) -> tuple[torch.Tensor, float]:
    """Sum of cross entropy weighted by example weight x class weight, and the weight total.

    Dividing the sum by the total gives PyTorch's weighted mean (``F.cross_entropy(weight=...)``).
    """
    per_example = F.cross_entropy(logits.float(), labels, reduction="none", label_smoothing=label_smoothing)
    w = torch.ones_like(per_example) if weights is None else weights.to(per_example)
    if class_weights is not None:
        w = w * class_weights.to(per_example)[labels]
    return (per_example * w).sum(), float(w.sum())


def step_scale(total_units: float, world_size: int = 1) -> float:
    """Multiply each micro-batch's loss sum by this before backward.

    ``total_units`` counts supervised units over the whole step on *all* processes; DDP averages
    gradients over ``world_size`` processes, which the factor undoes.
    """
    return world_size / max(total_units, 1.0)


def inverse_frequency_weights(label_ids: list[int], num_labels: int) -> torch.Tensor:
    """Class weights n / (k * count_c), the 'balanced' rule scikit-learn uses."""
    counts = torch.bincount(torch.tensor(label_ids), minlength=num_labels).float().clamp(min=1)
    return len(label_ids) / (num_labels * counts)
