"""The two model heads a task adapts: a sequence classifier (a fresh head, sized by the labels) or a causal LM."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Head:
    """How transformers builds a head: its Auto class, the architecture-name suffix, and whether it starts fresh."""

    auto_class: str
    architecture_suffix: str
    fresh: bool  # initialised for the run's labels (a classifier), not pretrained (an LM head)
    peft_task_type: str

    def auto(self):
        import transformers

        return getattr(transformers, self.auto_class)


HEADS: dict[str, Head] = {
    "classification": Head("AutoModelForSequenceClassification", "ForSequenceClassification", fresh=True,
                           peft_task_type="SEQ_CLS"),
    "causal": Head("AutoModelForCausalLM", "ForCausalLM", fresh=False, peft_task_type="CAUSAL_LM"),
}
