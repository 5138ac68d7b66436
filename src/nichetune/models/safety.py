"""Refuse model folders that would run pickle or remote code unless the user explicitly allows it."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelNotAvailableError, UnsafeModelError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def weight_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """Return (safetensors files, pickle-format weight files) directly inside ``folder``."""
    safe = sorted(folder.glob("*.safetensors"))
    pickled = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES)
    return safe, pickled


MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit for the JSON header


def check_safetensors(file: Path) -> None:
    """Read a safetensors header (8-byte length + JSON) without trusting it: the header must fit in
    the file and every tensor's byte range must lie inside the file, so a lying or truncated file is
    refused before any loader maps it.

    Raises:
        ModelNotAvailableError: naming the file and what is wrong with it.
    """
    size = file.stat().st_size
    with open(file, "rb") as fh:
        raw = fh.read(8)
        length = int.from_bytes(raw, "little") if len(raw) == 8 else -1
        if not 0 < length <= min(MAX_HEADER_BYTES, size - 8):
            raise ModelNotAvailableError(
                f"{file} is not a valid safetensors file: its header claims {max(length, 0):,} bytes in a "
                f"{size:,}-byte file", hint="the file is damaged or not safetensors; download or export it again")
        try:
            header = json.loads(fh.read(length))
            end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError):
            raise ModelNotAvailableError(f"{file} is not a valid safetensors file: unreadable header",
                                         hint="the file is damaged; download or export it again") from None
    if 8 + length + end > size:
        raise ModelNotAvailableError(
            f"{file} is not a valid safetensors file: its tensors claim {end:,} bytes but the file holds "
            f"{size - 8 - length:,}", hint="the file is truncated or damaged; download or export it again")


def refuse_pickle(folder: Path, what: str) -> None:
    """A run's own weights are safetensors; pickle there means the folder was tampered with.

    Raises:
        UnsafeModelError: naming the pickle files.
    """
    pickled = weight_files(folder)[1]
    if pickled:
        raise UnsafeModelError(
            f"{folder} ({what}) holds pickle-format files ({', '.join(p.name for p in pickled)}); nichetune writes "
            "only safetensors there, and loading pickle can run code hidden in the file",
            hint="retrain the run (nichetune train RECIPE --fresh) or restore its folder from a trusted copy")


def check_model_folder(folder: Path, *, allow_pickle: bool = False, trust_remote_code: bool = False) -> str:
    """Check a local model folder before anything loads it; return the weight format used.

    Raises:
        ModelNotAvailableError: no config.json or no weights at all.
        UnsafeModelError: only pickle weights (without ``allow_pickle``) or custom code
            (without ``trust_remote_code``).
    """
    if not (folder / "config.json").is_file():
        raise ModelNotAvailableError(
            f"{folder} has no config.json, so it is not a Hugging Face model folder",
            hint="point at the folder that holds config.json and the weights",
        )
    safe, pickled = weight_files(folder)
    if not safe and not pickled:
        raise ModelNotAvailableError(f"{folder} holds no weight files (*.safetensors)")
    if not safe:
        if not allow_pickle:
            names = ", ".join(p.name for p in pickled)
            raise UnsafeModelError(
                f"{folder} only has pickle-format weights ({names}). Loading pickle can run "
                "arbitrary code hidden in the file, so nichetune refuses it by default.",
                hint="convert the weights to safetensors where you trust the file "
                "(model.save_pretrained(dir, safe_serialization=True)), or pass --allow-pickle "
                "if you trust its origin",
            )
    for file in safe:
        check_safetensors(file)
    config = json.loads((folder / "config.json").read_text())
    if config.get("auto_map") and not trust_remote_code:
        raise UnsafeModelError(
            f"{folder}/config.json asks for custom Python code (auto_map: {sorted(config['auto_map'])}); "
            "nichetune never runs a model's own code unless told to.",
            hint="read the .py files in that folder, then pass --trust-remote-code if you accept them",
        )
    return "safetensors" if safe else "pickle"


def count_parameters(folder: Path) -> int:
    """Parameters stored in a folder's safetensors files, read from headers only (no weights loaded)."""
    from math import prod

    from safetensors import safe_open

    total = 0
    for file in weight_files(folder)[0]:
        with safe_open(file, framework="np") as fh:
            total += sum(prod(fh.get_slice(k).get_shape()) for k in fh.keys())
    return total
