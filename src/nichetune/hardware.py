"""Device and precision choices, made in one place."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

DTYPES = ("auto", "fp32", "bf16", "fp16")


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux; empty where /proc is missing)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    return frozenset(word for line in text.splitlines() if line.startswith("flags") and ":" in line
                     for word in line.split(":", 1)[1].split())


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_int8_dot() -> bool:
    """True when the CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX). Without them torch's
    int8 matrix multiply (``torch._int_mm``, which torchao's int8 layers call) falls back to a reference kernel:
    one text through a MiniLM classifier took 465 ms against fp32's 26 at 128 tokens, 1,864 against 106 at 512
    (18x), on an AVX2 EPYC. A CPU whose flags are not x86's (or unreadable) is not judged: True."""
    flags = _cpu_flags()
    return "sse2" not in flags or bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux; 0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (0 where /proc is missing)."""
    # VmHWM is this address space's high-water mark; ru_maxrss would carry the parent's over fork + exec
    try:
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0.0
    return int(line.split()[1]) / 1024


@lru_cache(maxsize=1)  # fixed when the process starts
def allocator() -> str:
    """The C allocator this process runs on: ``jemalloc`` or ``tcmalloc`` where preloaded (``cli.launch``), else
    ``glibc`` (or ``system`` where /proc is missing)."""
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        return "system"
    return next((name for name in ("jemalloc", "tcmalloc") if f"lib{name}" in maps), "glibc")


MMAP_THRESHOLD = 16 * 2**20  # bytes: C heap blocks this large come from, and go straight back to, the system
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


@lru_cache(maxsize=1)
def steady_allocator() -> bool:
    """Fix glibc's mmap threshold at ``MMAP_THRESHOLD`` (True where it took; a no-op off glibc).

    glibc raises the threshold to the size of every large block freed, up to 32 MB, so after a few training steps the
    output layer's chunks and an evaluation's batches are carved from the heap, where freed space stays resident and
    does not fit the next shape: a SmolLM2 LoRA run's peak swung from 2.8 to 3.4 GB between identical runs. With the
    threshold fixed, blocks of 16 MB and up are mapped and unmapped whole; measured, no slower.
    """
    import ctypes

    if allocator() != "glibc":  # jemalloc and tcmalloc do not keep freed blocks in a shared heap
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def release_memory() -> None:
    """Collect garbage and hand the C allocator's free pages back to the system (glibc's ``malloc_trim``, tcmalloc's
    ``ReleaseFreeMemory``, jemalloc's purge of every arena; a no-op elsewhere).

    Between the parts of a long job in one process: freed tensors otherwise stay resident in the allocator's arenas,
    so the process's footprint is the sum of its parts' peaks rather than the largest. tcmalloc in particular keeps
    every freed page for reuse: the demo's process stayed at 1.7 GB between steps without this.
    """
    import ctypes
    import gc

    gc.collect()
    name = allocator()
    try:
        if name == "tcmalloc":
            ctypes.CDLL(None).MallocExtension_ReleaseFreeMemory()
        elif name == "jemalloc":
            ctypes.CDLL(None).mallctl(b"arena.4096.purge", None, None, None, ctypes.c_size_t(0))  # 4096: all arenas
        else:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def pick_dtype(requested: str = "auto", device: str = "cpu"):
    """Map a recipe/CLI dtype name to a torch dtype; ``auto`` picks bf16 where it is fast."""
    import torch

    if requested not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {requested!r}")
    if requested == "fp32":
        return torch.float32
    if requested == "bf16":
        return torch.bfloat16
    if requested == "fp16":
        return torch.float16
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
