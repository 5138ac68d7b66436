"""GGUF exports of llama-family decoders (the ``gguf`` package): the merged model's weights in f16 (norms in
f32), its byte-level BPE tokenizer and chat template, in one file that llama.cpp and transformers' GGUF loader
read. Query and key projections are permuted to llama.cpp's rotary layout, as its own converter does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..run.loading import LoadedRun
from .formats import ExportFormat, Runner, register_format, torch_runner
from .merged import merged_model

FILE = "model.gguf"
# token types in GGUF's tokenizer metadata
NORMAL, CONTROL, USER_DEFINED = 1, 3, 4


def _refuse_non_llama(architectures: list[str]) -> str | None:
    if "LlamaForCausalLM" not in architectures:
        return f"GGUF export covers llama-family decoders (LlamaForCausalLM), not {', '.join(architectures) or '?'}"
    return None


def _rotary_permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """HF's (heads * head_dim, d) q/k rows -> llama.cpp's interleaved rotary layout."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _vocabulary(tokenizer, size: int) -> tuple[list[str], list[int], list[str]]:
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    if spec["model"]["type"] != "BPE":
        raise ValueError(f"GGUF export writes byte-level BPE tokenizers; this one is {spec['model']['type']}")
    by_id = {i: t for t, i in spec["model"]["vocab"].items()}
    types = {}
    for added in spec.get("added_tokens", []):
        by_id[added["id"]] = added["content"]
        types[added["id"]] = CONTROL if added.get("special") else USER_DEFINED
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(size)]
    kinds = [types.get(i, NORMAL if i in by_id else USER_DEFINED) for i in range(size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"].get("merges", [])]
    return tokens, kinds, merges


def _write(run: LoadedRun, folder: Path, max_length: int) -> None:
    import gguf

    model = merged_model(run).float().eval()
    cfg = model.config
    tokenizer = run.tokenizer
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    writer = gguf.GGUFWriter(str(folder / FILE), "llama")
    m = run.manifest
    writer.add_name(f"{run.paths.root.name} (nichetune {m.method_name} on {m.base_model.reference})")
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(float(getattr(cfg, "rope_theta", None)
                                    or (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    tokens, kinds, merges = _vocabulary(tokenizer, cfg.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm" if "smollm" in run.manifest.base_model.reference.lower() else "default")
    writer.add_token_list(tokens)
    writer.add_token_types(kinds)
    writer.add_token_merges(merges)
    for setter, token_id in ((writer.add_bos_token_id, tokenizer.bos_token_id),
                             (writer.add_eos_token_id, tokenizer.eos_token_id),
                             (writer.add_pad_token_id, tokenizer.pad_token_id),
                             (writer.add_unk_token_id, tokenizer.unk_token_id)):
        if token_id is not None:
            setter(int(token_id))
    writer.add_add_bos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue  # llama.cpp reuses token_embd for a tied output layer
        target = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise ValueError(f"no GGUF name for {name}")
        data = tensor.detach().cpu().float().numpy()
        if name.endswith("q_proj.weight"):
            data = _rotary_permute(data, heads)
        elif name.endswith("k_proj.weight"):
            data = _rotary_permute(data, kv_heads)
        writer.add_tensor(target, data.astype(np.float16 if data.ndim > 1 else np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _load(folder: Path, head: str, max_length: int) -> Runner:
    """Through transformers' GGUF loader (dequantized to fp32), with the tokenizer rebuilt from the file."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=FILE)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=FILE, dtype=torch.float32)
    return torch_runner(model, tokenizer, head, max_length)


LLAMA_CPP = "llama-simple"  # llama.cpp's minimal greedy generator: llama-simple -m FILE -n N PROMPT


def llama_cpp_answers(folder: Path, prompts: list[str], new_tokens: int) -> dict:
    """Greedy continuations from llama.cpp itself where it is installed; else say that it is not.

    The prompts are given as rendered text (chat template already applied), so both sides see the same
    tokens; llama-simple prints the prompt followed by the continuation on stdout.
    """
    import shutil
    import subprocess

    binary = shutil.which(LLAMA_CPP)
    if binary is None:
        return {"ran": False, "why": f"llama.cpp is not installed ({LLAMA_CPP} not on PATH)"}
    answers = []
    for prompt in prompts:
        proc = subprocess.run([binary, "-m", str(folder / FILE), "-n", str(new_tokens), prompt],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            return {"ran": False, "why": f"{LLAMA_CPP} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"}
        answers.append(proc.stdout.split(prompt, 1)[-1])
    return {"ran": True, "answers": answers}


GGUF = register_format(ExportFormat("gguf", "merged, one GGUF file (f16 weights) for llama.cpp and transformers",
                                    frozenset({"causal"}), _write, _load, requires=("gguf",),
                                    refuse=_refuse_non_llama, native_check=llama_cpp_answers))
