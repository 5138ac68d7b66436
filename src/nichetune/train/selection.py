"""Which weights a run ends with: early stopping on a validation metric, the best checkpoint, SWA, WiSE-FT."""

from __future__ import annotations

from collections import deque

import torch


class BestTracker:
    """Remembers the best evaluation so far and counts evaluations without improvement."""

    def __init__(self, metric: str, mode: str, patience: int | None):
        self.metric, self.mode, self.patience = metric, mode, patience
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.bad_evals = 0

    def update(self, step: int, metrics: dict[str, float]) -> bool:
        """Record an evaluation; return True when it is the best so far."""
        if self.metric not in metrics:
            raise KeyError(f"early stopping metric {self.metric!r} is not one of {sorted(metrics)}")
        value = metrics[self.metric]
        better = self.best_value is None or (value < self.best_value if self.mode == "min" else value > self.best_value)
        if better:
            self.best_value, self.best_step, self.bad_evals = value, step, 0
        else:
            self.bad_evals += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_evals >= self.patience

    def state(self) -> dict:
        return {"best_value": self.best_value, "best_step": self.best_step, "bad_evals": self.bad_evals}

    def load(self, state: dict) -> None:
        self.best_value, self.best_step, self.bad_evals = state["best_value"], state["best_step"], state["bad_evals"]


class WeightAverager:
    """Stochastic weight averaging over the trainable weights of the last ``k`` evaluations."""

    def __init__(self, k: int | None):
        self.k = k
        self.snapshots: deque[dict[str, torch.Tensor]] = deque(maxlen=k or 1)

    @property
    def enabled(self) -> bool:
        return self.k is not None

    def add(self, weights: dict[str, torch.Tensor]) -> None:
        if self.enabled:
            self.snapshots.append({n: t.detach().clone() for n, t in weights.items()})

    def average(self) -> dict[str, torch.Tensor]:
        names = self.snapshots[0].keys()
        return {n: torch.stack([s[n].float() for s in self.snapshots]).mean(0).to(self.snapshots[0][n].dtype)
                for n in names}

    def tensors(self) -> dict[str, torch.Tensor]:
        """For the checkpoint: ``swa<i>::<name>``."""
        return {f"swa{i}::{n}": t for i, snap in enumerate(self.snapshots) for n, t in snap.items()}

    def load(self, extra: dict[str, torch.Tensor]) -> None:
        by_index: dict[int, dict[str, torch.Tensor]] = {}
        for key, tensor in extra.items():
            if key.startswith("swa"):
                index, name = key[3:].split("::", 1)
                by_index.setdefault(int(index), {})[name] = tensor
        self.snapshots.clear()
        for index in sorted(by_index):
            self.snapshots.append(by_index[index])


class StartBlend:
    """WiSE-FT (Wortsman et al., 2022): the chosen final weights moved ``share`` of the way back to the ones the loop
    started from (after a pair stage and a fitted head), ``(1 - share) * final + share * start``. Fine-tuned from a
    good start, the blend keeps what the start knew and evens out the noise of which step training stopped at."""

    def __init__(self, share: float):
        self.share = share
        self.start: dict[str, torch.Tensor] = {}

    @property
    def enabled(self) -> bool:
        return self.share > 0

    def remember(self, weights: dict[str, torch.Tensor]) -> None:
        if self.enabled:
            self.start = {n: t.detach().clone() for n, t in weights.items()}

    def blend(self, final: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        a = self.share
        return {n: ((1 - a) * t.float() + a * self.start[n].float()).to(t.dtype) for n, t in final.items()}

    def tensors(self) -> dict[str, torch.Tensor]:
        """For the checkpoint, so that a resumed run blends with the same start: ``start::<name>``."""
        return {f"start::{n}": t for n, t in self.start.items()}

    def load(self, extra: dict[str, torch.Tensor]) -> None:
        self.start = {k.split("::", 1)[1]: t for k, t in extra.items() if k.startswith("start::")}
