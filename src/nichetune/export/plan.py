"""The export a recipe's deploy plan asks for (``deploy.quantize``, ``deploy.merge``, as ``recommend`` writes them),
so that ``nichetune export RUN --out DIR`` without ``--to`` ships what the plan said."""

from __future__ import annotations

from ..run.manifest import RunManifest
from .registry import FORMATS, formats_for

# int8: onnxruntime's kernels are fast with or without int8 dot-product instructions (u8 x s8 on AVX2 too); torchao's
# need them, and hold the decoders ONNX does not
INT8_ORDER = ("onnx-int8", "int8")


def planned_format(manifest: RunManifest, deploy) -> tuple[str, str] | None:
    """``(format, why)`` for a run and its recipe's ``deploy`` section, or None when the plan names no export
    (nothing to quantize or merge, or a whole-model run that already is its merged form)."""
    fits = set(formats_for(manifest))
    if deploy.quantize == "int8":
        for name in INT8_ORDER:
            if name in fits:
                return name, f"the recipe's deploy plan: int8 weights ({FORMATS[name].note})"
    if deploy.quantize == "bf16" and "bf16" in fits:
        return "bf16", "the recipe's deploy plan: bf16 weights"
    if (deploy.merge or deploy.quantize != "none") and "merged" in fits:
        return "merged", "the recipe's deploy plan: the adapter merged into the weights"
    return None
