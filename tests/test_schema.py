import pytest

from nichetune.data.schema import FieldMap, normalise

F = FieldMap()


def ok(row, task="sft", **kw):
    out, issue = normalise(row, task, F, **kw)
    assert issue is None, issue
    return out


def bad(row, task="sft", **kw):
    out, issue = normalise(row, task, F, **kw)
    assert out is None and issue is not None
    return issue


def test_openai_messages_pass_through():
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"}]
    out = ok({"messages": msgs, "id": 3})
    assert out == {"messages": msgs, "source_format": "openai", "id": 3}


def test_alpaca_with_and_without_input():
    out = ok({"instruction": "Define", "input": "kernel", "output": "The core of an OS."})
    assert out["source_format"] == "alpaca"
    assert out["messages"] == [{"role": "user", "content": "Define\n\nkernel"},
                               {"role": "assistant", "content": "The core of an OS."}]
    assert ok({"instruction": "Define kernel", "input": "", "output": "x"})["messages"][0]["content"] == "Define kernel"


def test_sharegpt_roles_are_mapped():
    out = ok({"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "q"},
                                {"from": "gpt", "value": "a"}]})
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant"]
    assert bad({"conversations": [{"from": "alien", "value": "q"}]}).reason == "invalid_messages"


def test_prompt_response_with_system():
    out = ok({"prompt": "q", "response": "a", "system": "s", "group": "g1"})
    assert out == {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                                {"role": "assistant", "content": "a"}], "source_format": "prompt_response",
                   "group": "g1"}


@pytest.mark.parametrize("messages, reason", [
    ([{"role": "user", "content": "q"}], "invalid_messages"),
    ([{"role": "user", "content": "q"}, {"role": "system", "content": "s"},
      {"role": "assistant", "content": "a"}], "invalid_messages"),
    ([{"role": "robot", "content": "q"}], "invalid_messages"),
    ([{"role": "assistant", "content": "a"}], "invalid_messages"),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}], "empty_field"),
    ([{"role": "user", "content": 5}, {"role": "assistant", "content": "a"}], "wrong_type"),
    ("not a list", "wrong_type"),
    ([], "empty_field"),
    ([{"role": "user", "content": "q\x00"}, {"role": "assistant", "content": "a"}], "control_characters"),
])
def test_untrainable_conversations(messages, reason):
    assert bad({"messages": messages}).reason == reason


def test_sft_row_without_a_known_shape():
    issue = bad({"question": "q", "answer": "a"})
    assert issue.reason == "missing_field" and "instruction" in issue.message


def test_classification_fields():
    out = ok({"text": "t", "label": 2, "group": 7, "weight": 0.5, "condition": "Pain"}, "classification")
    assert out == {"text": "t", "label": "2", "group": "7", "weight": 0.5, "condition": "Pain"}
    assert bad({"text": "t", "label": True}, "classification").reason == "wrong_type"
    assert bad({"text": "t", "label": "x", "weight": "heavy"}, "classification").reason == "wrong_type"
    assert ok({"text": "t", "label": "x", "weight": "1.5"}, "classification", from_strings=True)["weight"] == 1.5
    assert bad({"text": "t", "label": "x", "group": [1]}, "classification").reason == "wrong_type"


def test_slice_fields_must_be_scalar():
    fields = FieldMap(slices=["condition"])
    _, issue = normalise({"text": "t", "label": "a", "condition": {"x": 1}}, "classification", fields)
    assert issue.reason == "wrong_type" and issue.field == "condition"


def test_completion():
    assert ok({"text": "raw domain text", "source": "wiki"}, "completion") == {"text": "raw domain text",
                                                                              "source": "wiki"}
    assert bad({"body": "x"}, "completion").reason == "missing_field"


def test_field_map_rejects_unknown_keys():
    with pytest.raises(ValueError):
        FieldMap(txt="x")
