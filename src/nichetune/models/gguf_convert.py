"""Convert a GGUF checkpoint into a plain safetensors Hugging Face folder.

transformers dequantizes GGUF on load but marks the model as quantized, so
``save_pretrained`` and ``Trainer`` refuse it. We rebuild the architecture from a clean
config (no ``quantization_config``), copy the dequantized weights in, save safetensors +
tokenizer + chat template, and check the saved copy gives the same logits.
"""

from __future__ import annotations

from pathlib import Path

PROBE = "The compiler translates source code"


def convert_gguf(gguf_path: Path, out_dir: Path) -> dict:
    """Write a plain HF folder for ``gguf_path`` into ``out_dir``; return facts for the manifest."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, fname = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=fname)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=fname, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    real_missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if real_missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing={real_missing} unexpected={unexpected}")
    if config.tie_word_embeddings:
        plain.tie_weights()
    plain.generation_config = quantized.generation_config
    plain.eval()

    plain.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.model_max_length = config.max_position_embeddings  # GGUF leaves it at 1e30
    tokenizer.save_pretrained(out_dir)

    reloaded = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32, use_safetensors=True)
    ids = tokenizer(PROBE, return_tensors="pt").input_ids
    with torch.no_grad():
        expected = quantized(ids).logits
        got = reloaded(ids).logits
    max_diff = float((expected - got).abs().max())
    if max_diff > 1e-4:
        raise RuntimeError(f"converted model disagrees with the GGUF model (max logit diff {max_diff:.2e})")
    return {
        "format": "safetensors",
        "dtype": "float32",
        "architecture": type(plain).__name__,
        "parameters": sum(p.numel() for p in plain.parameters()),
        "transformers_version": transformers.__version__,
        "probe_max_logit_diff": max_diff,
        "has_chat_template": bool(tokenizer.chat_template),
    }
