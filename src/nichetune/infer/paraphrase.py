"""A language model as a paraphraser for ``nichetune data augment --ops paraphrase``."""

from __future__ import annotations


def lm_paraphraser(model: str, *, max_new_tokens: int = 96):
    """A ``text -> text`` paraphraser backed by a chat model (greedy decoding, deterministic)."""
    import torch

    from .generate import chat_input_ids
    from .loading import load_causal_lm

    lm, tokenizer = load_causal_lm(model)

    def paraphrase(text: str) -> str:
        ids = chat_input_ids(tokenizer, f"Rewrite this text in different words, keeping its meaning:\n\n{text}")
        with torch.inference_mode():
            out = lm.generate(ids.to(lm.device), attention_mask=torch.ones_like(ids).to(lm.device),
                              max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    return paraphrase
