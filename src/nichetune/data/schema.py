"""Task schemas: which fields a row needs for each task, and their normalised form."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from ..errors import DataValidationError
from .chat_formats import check_messages, from_alpaca, from_sharegpt
from .records import Issue

Task = Literal["classification", "sft", "completion"]
TASKS: tuple[str, ...] = ("classification", "sft", "completion")

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class FieldMap(BaseModel):
    """Names of the fields a dataset uses; defaults follow the common conventions."""

    model_config = ConfigDict(extra="forbid")

    text: str = "text"
    label: str = "label"
    group: str = "group"
    weight: str = "weight"
    id: str = "id"
    slices: list[str] = Field(default_factory=list)
    prompt: str = "prompt"
    response: str = "response"
    system: str = "system"
    messages: str = "messages"


def control_issue(value: str, field: str) -> Issue | None:
    match = _CONTROL.search(value)
    if match is None:
        return None
    return Issue("control_characters",
                 f"field {field!r} has control character U+{ord(match.group()):04X} at position {match.start()}",
                 field)


def _text(row: dict, field: str) -> tuple[str | None, Issue | None]:
    if field not in row or row[field] is None:
        return None, Issue("missing_field", f"missing field {field!r}", field)
    value = row[field]
    if not isinstance(value, str):
        return None, Issue("wrong_type", f"field {field!r} must be a string, got {type(value).__name__}", field)
    if not value.strip():
        return None, Issue("empty_field", f"field {field!r} is empty", field)
    return value, control_issue(value, field)


def _label(row: dict, field: str, labels: frozenset[str] | None) -> tuple[str | None, Issue | None]:
    if field not in row or row[field] is None:
        return None, Issue("missing_field", f"missing field {field!r}", field)
    value = row[field]
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None, Issue("wrong_type", f"field {field!r} must be a string or integer, got "
                           f"{type(value).__name__}", field)
    label = str(value).strip()
    if not label:
        return None, Issue("empty_field", f"field {field!r} is empty", field)
    if labels is not None and label not in labels:
        return None, Issue("unknown_label", f"label {label!r} is not one of {sorted(labels)}", field)
    return label, control_issue(label, field)


def _weight(row: dict, field: str, from_strings: bool) -> tuple[float | None, Issue | None]:
    value = row.get(field)
    if value is None or (from_strings and value == ""):
        return None, None
    if from_strings and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None, Issue("wrong_type", f"field {field!r} must be a number, got {value!r}", field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, Issue("wrong_type", f"field {field!r} must be a number, got {type(value).__name__}", field)
    if not math.isfinite(value) or value < 0:
        return None, Issue("invalid_value", f"field {field!r} must be a finite number >= 0, got {value}", field)
    return float(value), None


def _scalar(row: dict, field: str) -> Issue | None:
    value = row.get(field)
    if value is None or isinstance(value, str | int | float | bool):
        return None
    return Issue("wrong_type", f"field {field!r} must be a single value, got {type(value).__name__}", field)


def _classification(row: dict, f: FieldMap, labels, from_strings: bool):
    text, issue = _text(row, f.text)
    if issue:
        return None, issue
    label, issue = _label(row, f.label, labels)
    if issue:
        return None, issue
    weight, issue = _weight(row, f.weight, from_strings)
    if issue:
        return None, issue
    for field in (f.group, *f.slices):
        if issue := _scalar(row, field):
            return None, issue
    out = {k: v for k, v in row.items() if k not in {f.text, f.label, f.weight, f.group}}
    out.update(text=text, label=label)
    if row.get(f.group) not in (None, ""):
        out["group"] = str(row[f.group])
    if weight is not None:
        out["weight"] = weight
    return out, None


def _sft(row: dict, f: FieldMap, labels, from_strings: bool):
    if f.messages in row:
        messages, issue, fmt, used = *check_messages(row[f.messages], f.messages), "openai", {f.messages}
    elif "conversations" in row:
        messages, issue, fmt, used = *from_sharegpt(row["conversations"], "conversations"), "sharegpt", {
            "conversations"}
    elif "instruction" in row and "output" in row:
        messages, issue, fmt, used = *from_alpaca(row), "alpaca", {"instruction", "input", "output", "system"}
    elif f.prompt in row or f.response in row:
        prompt, issue = _text(row, f.prompt)
        if issue:
            return None, issue
        response, issue = _text(row, f.response)
        if issue:
            return None, issue
        system = row.get(f.system)
        messages = ([{"role": "system", "content": system}] if isinstance(system, str) and system.strip() else [])
        messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        fmt, used = "prompt_response", {f.prompt, f.response, f.system}
    else:
        return None, Issue("missing_field", f"an sft row needs {f.messages!r}, 'conversations', "
                           f"'instruction'+'output', or {f.prompt!r}+{f.response!r}", f.messages)
    if issue:
        return None, issue
    for i, msg in enumerate(messages):
        if bad := control_issue(msg["content"], f"{f.messages}[{i}].content"):
            return None, bad
    out = {k: v for k, v in row.items() if k not in used}
    out.update(messages=messages, source_format=fmt)
    return out, None


def _completion(row: dict, f: FieldMap, labels, from_strings: bool):
    text, issue = _text(row, f.text)
    if issue:
        return None, issue
    out = {k: v for k, v in row.items() if k != f.text}
    out["text"] = text
    return out, None


class RowSchema(NamedTuple):
    """A task's rows: how one is checked and normalised, and whether it carries a label."""

    normalise: Callable[..., tuple[dict | None, Issue | None]]
    labelled: bool


ROW_SCHEMAS: dict[str, RowSchema] = {
    "classification": RowSchema(_classification, labelled=True),
    "sft": RowSchema(_sft, labelled=False),
    "completion": RowSchema(_completion, labelled=False),
}


def row_schema(task: str) -> RowSchema:
    """The row schema of ``task`` (one of ``TASKS``).

    Raises:
        DataValidationError: ``task`` is not one of ``TASKS``.
    """
    if task not in ROW_SCHEMAS:
        raise DataValidationError(f"unknown task {task!r}", hint=f"use one of {', '.join(TASKS)}")
    return ROW_SCHEMAS[task]


def normalise(
    row: dict[str, Any], task: str, fields: FieldMap, labels: frozenset[str] | None = None,
    *, from_strings: bool = False,
) -> tuple[dict | None, Issue | None]:
    """Check ``row`` against ``task`` and return its canonical form, or the first issue found.

    Canonical fields: classification -> ``text``, ``label`` (+ ``group``, ``weight``);
    sft -> ``messages``, ``source_format``; completion -> ``text``. Other fields pass through.
    """
    return ROW_SCHEMAS[task].normalise(row, fields, labels, from_strings)
