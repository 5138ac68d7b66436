"""Atomic checkpoints for exact resume, without pickle.

A checkpoint folder holds the trainable weights and AdamW moments (safetensors, keyed by
parameter name), the RNG states, and ``state.json`` (step, data position, early-stopping and
SWA bookkeeping). It is written under a temporary name on the same disk, given a sha256
manifest, then renamed; resume takes the newest checkpoint whose manifest verifies.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_dir
from ..hashing import verify_manifest, write_manifest
from .optim import managed_params

PREFIX = "step-"


def trainable_weights(optimizer) -> dict[str, torch.Tensor]:
    """The weights a run changes (what a checkpoint, the best model and SWA need to keep)."""
    return {n: p.detach().contiguous() for n, p in managed_params(optimizer).items()}


def load_weights(model, weights: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)


def save_checkpoint(folder: Path, model, optimizer, state: dict, extra_tensors: dict[str, torch.Tensor] | None = None,
                    keep: int = 2, protect: set[str] = frozenset()) -> Path:
    """Write ``folder / step-NNNNNNN`` atomically, then drop the oldest beyond ``keep`` (not ``protect``)."""
    target = folder / f"{PREFIX}{state['step']:07d}"
    names = {id(p): n for n, p in managed_params(optimizer).items()}
    moments: dict[str, torch.Tensor] = {}
    steps: dict[str, float] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p)
            if st:
                name = names[id(p)]
                moments[f"{name}::exp_avg"] = st["exp_avg"].contiguous()
                moments[f"{name}::exp_avg_sq"] = st["exp_avg_sq"].contiguous()
                steps[name] = float(st["step"])
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    py_state = random.getstate()
    with atomic_dir(target) as tmp:
        save_file(trainable_weights(optimizer), str(tmp / "trainable.safetensors"))
        save_file(moments or {"_empty": torch.zeros(1)}, str(tmp / "optimizer.safetensors"))
        save_file(rng, str(tmp / "rng.safetensors"))
        if extra_tensors:
            save_file({k: v.contiguous() for k, v in extra_tensors.items()}, str(tmp / "extra.safetensors"))
        full_state = {**state, "adam_steps": steps, "lrs": [g["lr"] for g in optimizer.param_groups],
                      "python_rng": [py_state[0], list(py_state[1]), py_state[2]],
                      "numpy_rng": _numpy_state()}
        (tmp / "state.json").write_text(json.dumps(full_state, indent=1))
        write_manifest(tmp, extra={"kind": "nichetune-checkpoint"})
    existing = sorted(p for p in folder.glob(f"{PREFIX}*") if p.is_dir() and p.name not in protect)
    for old in existing[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _numpy_state() -> list:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def find_resumable(folder: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint whose manifest verifies, and why each newer one (half-written, damaged) was skipped."""
    skipped = []
    for candidate in sorted((p for p in folder.glob(f"{PREFIX}*") if p.is_dir()), reverse=True):
        problems = verify_manifest(candidate)
        if not problems:
            return candidate, skipped
        skipped.append(f"{candidate.name} ({'; '.join(problems[:2])})")
    return None, skipped


def checkpoint_weights(path: Path) -> dict[str, torch.Tensor]:
    """The trainable weights saved in a checkpoint (to restore the best one at the end)."""
    return load_file(str(path / "trainable.safetensors"))


def checkpoint_step(path: Path) -> int:
    """The optimizer step a checkpoint was written after."""
    return int(json.loads((path / "state.json").read_text())["step"])


def load_checkpoint(path: Path, model, optimizer) -> tuple[dict, dict[str, torch.Tensor]]:
    """Restore weights, optimizer moments, LRs and every RNG; return (state, extra tensors)."""
    state = json.loads((path / "state.json").read_text())
    load_weights(model, load_file(str(path / "trainable.safetensors")))
    moments = load_file(str(path / "optimizer.safetensors"))
    for group, lr in zip(optimizer.param_groups, state["lrs"], strict=True):
        group["lr"] = lr
        for p, name in zip(group["params"], group["names"], strict=True):
            if name in state["adam_steps"]:
                optimizer.state[p] = {"step": torch.tensor(state["adam_steps"][name]),
                                      "exp_avg": moments[f"{name}::exp_avg"].clone(),
                                      "exp_avg_sq": moments[f"{name}::exp_avg_sq"].clone()}
    rng = load_file(str(path / "rng.safetensors"))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    version, internal, gauss = state["python_rng"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy_rng"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    extra = load_file(str(path / "extra.safetensors")) if (path / "extra.safetensors").exists() else {}
    return state, extra
