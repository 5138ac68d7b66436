"""Lower-precision forms of a merged model: bf16 weights, and int8 dynamic quantization of linear layers."""

from __future__ import annotations

import io
import warnings

# Llama-style MLP output projections see activation outliers that per-tensor int8 activations
# cannot hold: quantizing them took SmolLM2-135M's perplexity from 22.6 to 66 (27 without them).
SKIP = ("down_proj",)


def to_bf16(model):
    import torch

    return model.to(torch.bfloat16)


def int8_dynamic(model):
    """Linear layers with int8 weights (per-channel scales) and activations quantized on the fly.

    The output layer and the activation-outlier layers in ``SKIP`` stay fp32.
    """
    import torch

    with warnings.catch_warnings():  # torch.ao's dynamic quantization is deprecated in favour of torchao
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        spec = {name: per_channel_dynamic_qconfig for name, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and m is not head and not name.endswith(SKIP)}
        return quantize_dynamic(model, spec, dtype=torch.qint8)


def state_mb(model) -> float:
    """Size of the state dict in memory (quantized modules serialise only through torch.save: never to disk)."""
    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return len(buf.getvalue()) / 2**20
