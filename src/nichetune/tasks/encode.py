"""Turn normalised rows into token ids and labels for each task.

SFT labels cover the assistant turns only (unless ``loss_on="all"``), located by rendering the
conversation prefix by prefix through the model's own chat template. Every example ends with
EOS after truncation; ``check_eos`` verifies it before training starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import NichetuneError

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int] | int  # token labels (causal) or a class index (classification)
    weight: float = 1.0


def encode_classification(rows: list[dict], tokenizer, label2id: dict[str, int], max_length: int) -> list[Example]:
    """Each row's text, cut to ``max_length`` as the tokenizer's recorded truncation says (see ``truncation``)."""
    from ..truncation import encode_ids

    ids = encode_ids(tokenizer, [row["text"] for row in rows], max_length) if rows else []
    return [Example(row_ids, label2id[row["label"]], float(row.get("weight", 1.0)))
            for row, row_ids in zip(rows, ids, strict=True)]


def _template_ids(tokenizer, messages: list[dict], add_generation_prompt: bool) -> list[int]:
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                              tokenize=True, return_dict=True)["input_ids"])


def _end_with_eos(ids: list[int], labels: list[int], eos: int, max_length: int) -> tuple[list[int], list[int]]:
    ids, labels = ids[:max_length], labels[:max_length]
    if ids[-1] != eos:
        ids[-1] = eos
        labels[-1] = eos
    return ids, labels


def encode_sft(rows: list[dict], tokenizer, max_length: int, loss_on: str = "assistant") -> list[Example]:
    if not tokenizer.chat_template:
        raise NichetuneError("sft needs a chat template and this tokenizer has none",
                             hint="use an instruct model (smollm2-135m-instruct) or set tokenizer.chat_template")
    eos = tokenizer.eos_token_id
    out = []
    for row in rows:
        messages = row["messages"]
        ids = _template_ids(tokenizer, messages, False)
        if loss_on == "all":
            labels = list(ids)
        else:
            labels = [IGNORE] * len(ids)
            for i, msg in enumerate(messages):
                if msg["role"] != "assistant":
                    continue
                start = len(_template_ids(tokenizer, messages[:i], True))
                end = len(_template_ids(tokenizer, messages[: i + 1], False))
                if ids[:end] != _template_ids(tokenizer, messages[: i + 1], False)[:end]:
                    raise NichetuneError("the chat template does not render conversations prefix by prefix, so "
                                         "assistant tokens cannot be located", hint="set train.loss_on=all")
                # the turn's content and its end-of-turn token; trailing newlines after EOS are not targets
                stop = end
                while stop > start and ids[stop - 1] != eos:
                    stop -= 1
                stop = stop if stop > start else end
                labels[start:stop] = ids[start:stop]
        ids, labels = _end_with_eos(ids, labels, eos, max_length)
        out.append(Example(ids, labels))
    return out


def encode_completion(rows: list[dict], tokenizer, max_length: int) -> list[Example]:
    """Each document + EOS, split into ``max_length`` chunks (the last chunk ends with EOS)."""
    eos = tokenizer.eos_token_id
    out = []
    for row in rows:
        ids = tokenizer(row["text"], add_special_tokens=False)["input_ids"] + [eos]
        for start in range(0, len(ids), max_length):
            chunk = ids[start : start + max_length]
            if len(chunk) > 1:
                out.append(Example(chunk, list(chunk)))
    return out


def check_eos(examples: list[Example], eos: int) -> None:
    bad = [i for i, ex in enumerate(examples) if not ex.input_ids or ex.input_ids[-1] != eos]
    if bad:
        raise NichetuneError(f"{len(bad)} training examples do not end with EOS (first: {bad[:5]})",
                             hint="this is a bug in encoding; please report it with the recipe")
