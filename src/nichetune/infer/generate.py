"""Chat-templated text generation with streamed output."""

from __future__ import annotations

import sys
from collections.abc import Callable
from threading import Thread

from ..models.resolve import ResolvedModel
from .loading import load_causal_lm


def chat_input_ids(tokenizer, prompt: str, system: str | None = None, *, use_template: bool = True):
    """Token ids (1, T) for ``prompt``: through the chat template when the tokenizer has one."""
    if use_template and tokenizer.chat_template:
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}
        ]
        encoded = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return encoded["input_ids"]
    return tokenizer(prompt, return_tensors="pt").input_ids


def generate(
    model: str | ResolvedModel,
    prompt: str,
    *,
    system: str | None = None,
    max_new_tokens: int = 200,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    dtype: str = "auto",
    device: str = "auto",
    use_template: bool = True,
    on_text: Callable[[str], None] | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> str:
    """Generate a reply to ``prompt``; ``on_text`` receives text pieces as they are produced.

    Decoding is greedy (deterministic) when ``temperature`` is 0.

    Example:
        >>> generate("smollm2-135m-instruct", "What is a compiler?", on_text=print)  # doctest: +SKIP
    """
    import torch
    from transformers import TextIteratorStreamer

    lm, tokenizer = load_causal_lm(
        model, dtype=dtype, device=device, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code
    )
    input_ids = chat_input_ids(tokenizer, prompt, system, use_template=use_template).to(lm.device)
    torch.manual_seed(seed)
    sampling = temperature > 0
    kwargs = dict(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=max_new_tokens,
        do_sample=sampling,
        pad_token_id=tokenizer.pad_token_id,
        **({"temperature": temperature, "top_p": top_p} if sampling else {"top_p": None, "top_k": None}),
    )
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with torch.inference_mode():
                lm.generate(**kwargs, streamer=streamer)
        except BaseException as exc:  # surfaced in the caller's thread below
            errors.append(exc)
            streamer.end()

    thread = Thread(target=work, daemon=True)
    thread.start()
    pieces = []
    for piece in streamer:
        pieces.append(piece)
        if on_text:
            on_text(piece)
    thread.join()
    if errors:
        raise errors[0]
    return "".join(pieces)


def print_stream(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()
