"""Turning a finished run into what is shipped: merged, bf16, int8, ONNX (and int8 ONNX) exports, each a
folder with its own manifest and a parity report against the run (``export_run``).

Light on import: ``nichetune.export.onnx_runtime`` must load without torch.
"""

from __future__ import annotations

from importlib import import_module

_LAZY = {
    "FORMATS": "nichetune.export.registry",
    "ExportFormat": "nichetune.export.formats",
    "export_run": "nichetune.export.export",
    "merge_run": "nichetune.export.merged",
    "read_export": "nichetune.export.export",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nichetune.export' has no attribute {name!r}")
