"""Generation for the server: concurrent requests decoded together in one ``generate`` call (left-padded, KV cache
on), each row streamed piece by piece and stopped on its own by end of text, a stop string, its token cap, a
deadline or a client that went away.

Runs in the model's thread with its group lock held; each job's ``on_piece`` receives its text as it is decoded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


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


@dataclass
class Job:
    """One sequence to generate: its prompt (1, T), sampling, the request's cancel flag and where its text goes."""

    input_ids: Any
    sampling: Sampling
    cancel: Cancel
    on_piece: Callable[[str], None] = lambda piece: None


class _Row:
    """One row of a batch: decodes its new tokens incrementally, holds back what could start a stop string, and
    knows when it is done (end of text, a stop string, its own token cap, its request cancelled)."""

    def __init__(self, job: Job, tokenizer, eos: set[int]):
        self.job, self.tokenizer, self.eos = job, tokenizer, eos
        self.ids: list[int] = []
        self.sent = ""
        self.reason: str | None = None  # set when the row is done
        self._hold = max((len(s) for s in job.sampling.stop), default=1) - 1

    def add(self, token: int) -> None:
        if self.reason is not None:
            return
        self.ids.append(token)
        if token in self.eos:
            self.reason = "stop"
            return self._send(self._text())
        text = self._text()
        cut = min((i for i in (text.find(s) for s in self.job.sampling.stop) if i >= 0), default=-1)
        if cut >= 0:
            self.reason = "stop"
            return self._send(text[:cut])
        if not text.endswith("\ufffd"):  # a character split across tokens waits for the rest
            self._send(text[: max(len(self.sent), len(text) - self._hold)])
        if len(self.ids) >= self.job.sampling.max_tokens:
            self.reason = "length"
            self._send(text)

    @property
    def done(self) -> bool:
        if self.reason is None and self.job.cancel.stopped:
            self.reason = "cancelled"
        return self.reason is not None

    def _text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=True)

    def _send(self, upto: str) -> None:
        if len(upto) > len(self.sent) and not upto.endswith("\ufffd"):
            piece, self.sent = upto[len(self.sent):], upto
            self.job.on_piece(piece)

    def result(self) -> Generated:
        return Generated(self.sent, self.reason or "length", len(self.ids))


class _Streamer:
    """What ``generate`` calls with each step's tokens (B,), after the prompt; feeds every row still running."""

    def __init__(self, rows: list[_Row]):
        self.rows, self._prompt_seen = rows, False

    def put(self, value) -> None:
        if not self._prompt_seen:  # generate first sends the prompt
            self._prompt_seen = True
            return
        for row, token in zip(self.rows, value.reshape(-1).tolist(), strict=True):
            row.add(int(token))

    def end(self) -> None:
        pass


def generate_batch(model, tokenizer, jobs: list[Job]) -> list[Generated]:
    """Generate every job's continuation in one ``generate`` call (prompts left-padded, KV cache on); each row stops
    on its own. Jobs in one batch share temperature and top_p, and a seeded job runs alone (see ``batchable``).
    Call with the model's group lock held."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    eos = set(_eos_ids(model, tokenizer))
    rows = [_Row(job, tokenizer, eos) for job in jobs]
    live = [r for r in rows if not r.done]
    if not live:
        return [r.result() for r in rows]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(eos), 0)
    longest = max(r.job.input_ids.shape[1] for r in live)
    input_ids = torch.full((len(live), longest), pad, dtype=torch.long)
    attention = torch.zeros((len(live), longest), dtype=torch.long)
    for i, row in enumerate(live):  # left padding: every prompt ends where generation starts
        n = row.job.input_ids.shape[1]
        input_ids[i, longest - n:] = row.job.input_ids[0]
        attention[i, longest - n:] = 1

    class _Stop(StoppingCriteria):
        def __call__(self, ids, scores, **kwargs):
            return torch.tensor([r.done for r in live], dtype=torch.bool)

    sampling = live[0].job.sampling
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed % 2**63)  # any integer a client sends is a valid, repeatable seed
    # the limit of temperature -> 0 is greedy decoding; dividing logits by a tiny temperature overflows to inf
    sample = sampling.temperature >= GREEDY_BELOW
    options = ({"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": None}
               if sample else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None})
    with torch.inference_mode():
        model.generate(input_ids=input_ids, attention_mask=attention, pad_token_id=pad,
                       max_new_tokens=max(r.job.sampling.max_tokens for r in live), streamer=_Streamer(live),
                       stopping_criteria=StoppingCriteriaList([_Stop()]), use_cache=True, **options)
    return [r.result() for r in rows]


def batchable(first: Job, other: Job) -> bool:
    """Whether ``other`` may share a batch with ``first``: the same sampling settings, and neither seeded (a seed
    promises the answer that request would get alone)."""
    a, b = first.sampling, other.sampling
    return a.seed is None and b.seed is None and (a.temperature, a.top_p) == (b.temperature, b.top_p)


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
