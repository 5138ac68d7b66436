"""Instruction data in its common shapes, converted to OpenAI-style ``messages``.

Detected per row: ``messages`` (OpenAI), ``conversations`` (ShareGPT), ``instruction``/``input``/
``output`` (Alpaca) and ``prompt``/``response`` (field names configurable).
"""

from __future__ import annotations

from typing import Any

from .records import Issue

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant", "model": "assistant", "bot": "assistant"}

Messages = list[dict[str, str]]


def _bad(message: str, field: str) -> tuple[None, Issue]:
    return None, Issue("invalid_messages", message, field)


def check_messages(messages: Any, field: str) -> tuple[Messages | None, Issue | None]:
    """Check a conversation is trainable: known roles, string contents, ends with the assistant."""
    if not isinstance(messages, list):
        return None, Issue("wrong_type", f"field {field!r} must be a list of messages", field)
    if not messages:
        return None, Issue("empty_field", f"field {field!r} has no messages", field)
    clean: Messages = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            return _bad(f"message {i} must be an object with 'role' and 'content'", field)
        role, content = msg["role"], msg["content"]
        if role not in ROLES:
            return _bad(f"message {i} has role {role!r}; allowed: {', '.join(ROLES)}", field)
        if role == "system" and i != 0:
            return _bad(f"message {i}: a system message may only come first", field)
        if not isinstance(content, str):
            return None, Issue("wrong_type", f"message {i} content must be a string", field)
        if not content.strip():
            return None, Issue("empty_field", f"message {i} ({role}) has empty content", field)
        clean.append({"role": role, "content": content})
    if clean[-1]["role"] != "assistant":
        return _bad("the conversation must end with an assistant message to train on", field)
    if not any(m["role"] == "user" for m in clean):
        return _bad("the conversation has no user message", field)
    return clean, None


def from_sharegpt(turns: Any, field: str) -> tuple[Messages | None, Issue | None]:
    if not isinstance(turns, list):
        return None, Issue("wrong_type", f"field {field!r} must be a list of turns", field)
    out = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            return _bad(f"turn {i} must be an object with 'from' and 'value'", field)
        role = SHAREGPT_ROLES.get(str(turn["from"]).lower())
        if role is None:
            return _bad(f"turn {i} has speaker {turn['from']!r}; allowed: {', '.join(SHAREGPT_ROLES)}", field)
        out.append({"role": role, "content": turn["value"]})
    return check_messages(out, field)


def from_alpaca(row: dict) -> tuple[Messages | None, Issue | None]:
    instruction, extra, output = row.get("instruction"), row.get("input") or "", row.get("output")
    for name, value in (("instruction", instruction), ("input", extra), ("output", output)):
        if not isinstance(value, str):
            return None, Issue("wrong_type", f"field {name!r} must be a string", name)
    user = instruction if not extra.strip() else f"{instruction}\n\n{extra}"
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    if isinstance(row.get("system"), str) and row["system"].strip():
        messages.insert(0, {"role": "system", "content": row["system"]})
    return check_messages(messages, "output" if isinstance(output, str) and not output.strip() else "instruction")
