"""Greedy (deterministic) replies to chat conversations, one at a time: what evaluations compare."""

from __future__ import annotations


def greedy_chat(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = 64) -> list[str]:
    """The model's greedy reply to each conversation (a list of ``{"role", "content"}``), stripped.

    Raises:
        ValueError: the tokenizer has no chat template.
    """
    import torch

    if not tokenizer.chat_template:
        raise ValueError("greedy_chat needs a tokenizer with a chat template")
    out = []
    with torch.inference_mode():
        for messages in conversations:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)["input_ids"].to(model.device)
            gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
            out.append(tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return out
