"""Generation for the server: one sequence at a time through ``generate`` (KV cache on), streamed piece by piece,
stopped by a stop string, the token cap, a deadline or a cancelled request.

Runs in a worker thread with the model's group lock held; ``on_piece`` receives text as it is decoded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Cancel:
    """Set by the request side (client gone, timeout); read by the generating thread after every token."""

    event: threading.Event = field(default_factory=threading.Event)
    deadline: float = float("inf")  # time.monotonic()
    reason: str | None = None

    def cancel(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.event.set()

    @property
    def stopped(self) -> bool:
        if not self.event.is_set() and time.monotonic() > self.deadline:
            self.cancel("timeout")
        return self.event.is_set()


GREEDY_BELOW = 1e-3


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass
class Generated:
    text: str
    finish_reason: str  # stop | length | cancelled
    completion_tokens: int


class _Pieces:
    """A ``generate`` streamer: decodes the new tokens incrementally, holds back what could start a stop string,
    and ends generation (through ``should_stop``) once a stop string appears."""

    def __init__(self, tokenizer, stop: tuple[str, ...], on_piece: Callable[[str], None]):
        self.tokenizer, self.stop, self.on_piece = tokenizer, stop, on_piece
        self.ids: list[int] = []
        self.sent = ""
        self.hit_stop = False
        self._prompt_seen = False
        self._hold = max((len(s) for s in stop), default=1) - 1

    def put(self, value) -> None:
        if not self._prompt_seen:  # generate first sends the prompt
            self._prompt_seen = True
            return
        if self.hit_stop:
            return
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # a character split across tokens: wait for the rest
            return
        cut = min((i for i in (text.find(s) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            self.hit_stop = True
            self._send(text[:cut])
        else:
            self._send(text[: max(len(self.sent), len(text) - self._hold)])

    def _send(self, upto: str) -> None:
        if len(upto) > len(self.sent):
            piece, self.sent = upto[len(self.sent):], upto
            self.on_piece(piece)

    def end(self) -> None:
        if not self.hit_stop:
            self._send(self.tokenizer.decode(self.ids, skip_special_tokens=True))


def generate_one(model, tokenizer, input_ids, sampling: Sampling, cancel: Cancel,
                 on_piece: Callable[[str], None] = lambda piece: None) -> Generated:
    """Generate one continuation of ``input_ids`` (1, T); call with the model's group lock held."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    pieces = _Pieces(tokenizer, sampling.stop, on_piece)

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), pieces.hit_stop or cancel.stopped, dtype=torch.bool)

    if sampling.seed is not None:
        torch.manual_seed(sampling.seed % 2**63)  # any integer a client sends is a valid, repeatable seed
    # the limit of temperature -> 0 is greedy decoding; dividing logits by a tiny temperature overflows to inf
    sample = sampling.temperature >= GREEDY_BELOW
    options = ({"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": None}
               if sample else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None})
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                             max_new_tokens=sampling.max_tokens, pad_token_id=tokenizer.pad_token_id,
                             streamer=pieces, stopping_criteria=StoppingCriteriaList([_Stop()]), use_cache=True,
                             **options)
    new = out[0, input_ids.shape[1]:]
    eos = set(_eos_ids(model, tokenizer))
    tokens = len(new)
    if cancel.event.is_set():
        reason = "cancelled"
    elif pieces.hit_stop or (tokens and int(new[-1]) in eos) or tokens < sampling.max_tokens:
        reason = "stop"
    else:
        reason = "length"
    return Generated(pieces.sent, reason, tokens)


def _eos_ids(model, tokenizer) -> list[int]:
    eos = getattr(model.generation_config, "eos_token_id", None) if hasattr(model, "generation_config") else None
    eos = eos if eos is not None else tokenizer.eos_token_id
    return [eos] if isinstance(eos, int) else list(eos or [])


def chat_prompt_ids(tokenizer, messages: list[dict]):
    """(1, T) ids of ``messages`` through the model's own chat template, ready for the assistant's turn."""
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
    return encoded["input_ids"]


def text_prompt_ids(tokenizer, prompt: str):
    """(1, T) ids of a plain prompt; an empty prompt starts from the beginning-of-text token, as OpenAI's does."""
    import torch

    ids = tokenizer(prompt, return_tensors="pt").input_ids
    if ids.shape[1] == 0:
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start is None:
            from .errors import ApiError

            raise ApiError(422, "the prompt is empty and this model has no start token", code="empty_prompt",
                           param="prompt")
        ids = torch.tensor([[start]])
    return ids
