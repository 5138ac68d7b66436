"""Score candidate labels by their likelihood under a causal LM: zero-shot and k-shot (in-context) classification.

The prompt is an instruction, ``k`` worked examples (text -> label) and the text to classify;
each label is scored as the sum of its tokens' log-probabilities after the prompt. The part of
the prompt shared by every text (instruction and examples) is run once and its key/value cache
reused, so k-shot scoring costs about as much as zero-shot.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

DEFAULT_INSTRUCTION = "Classify the text into exactly one of these labels: {labels}. Answer with the label only."

# Content-free inputs for contextual calibration (Zhao et al. 2021, "Calibrate Before Use").
CONTENT_FREE = ("N/A", "[MASK]", "")


class LabelScorer:
    """Log-likelihood of each label after an (optionally few-shot) classification prompt.

    Args:
        model: a causal LM (None is enough for :meth:`prompt_ids`).
        tokenizer: its tokenizer; a chat template, when present, makes each example a user/assistant turn.
        labels: the label strings whose tokens are scored.
        shots: worked examples as ``(text, label)`` pairs, placed before every text.
    """

    def __init__(self, model, tokenizer, labels: Sequence[str], shots: Sequence[tuple[str, str]] = (),
                 instruction: str = DEFAULT_INSTRUCTION):
        self.model, self.tokenizer, self.labels = model, tokenizer, list(labels)
        self.shots, self.instruction = list(shots), instruction.format(labels=", ".join(self.labels))
        self.chat = bool(tokenizer.chat_template)
        sep = "" if self.chat else " "
        self.continuations = [tokenizer(sep + label, add_special_tokens=False).input_ids for label in self.labels]
        self.prefix_text = self._render(None) if self.shots else ""
        self.prefix_ids = self._encode(self.prefix_text, first=True) if self.prefix_text else []
        self._cache = None

    def _turns(self, text: str | None) -> list[dict]:
        turns: list[dict] = []
        for i, (shot, label) in enumerate(self.shots):
            lead = f"{self.instruction}\n\n" if i == 0 else ""
            turns += [{"role": "user", "content": f"{lead}Text: {shot}"}, {"role": "assistant", "content": label}]
        if text is not None:
            lead = "" if self.shots else f"{self.instruction}\n\n"
            turns.append({"role": "user", "content": f"{lead}Text: {text}"})
        return turns

    def _render(self, text: str | None) -> str:
        if self.chat:
            return self.tokenizer.apply_chat_template(self._turns(text), add_generation_prompt=text is not None,
                                                      tokenize=False)
        shots = "".join(f"Text: {t}\nLabel: {label}\n\n" for t, label in self.shots)
        return f"{self.instruction}\n\n{shots}" + (f"Text: {text}\nLabel:" if text is not None else "")

    def _encode(self, text: str, first: bool) -> list[int]:
        # a chat template renders its own special tokens; a plain prompt gets the tokenizer's BOS once
        return self.tokenizer(text, add_special_tokens=first and not self.chat).input_ids

    def prompt_ids(self, text: str) -> list[int]:
        """The full prompt's ids, ending where the label begins."""
        full = self._render(text)
        if self.prefix_text and full.startswith(self.prefix_text):
            return self.prefix_ids + self._encode(full[len(self.prefix_text):], first=False)
        return self._encode(full, first=True)

    def _prefix_cache(self):
        import torch

        if self._cache is None:
            with torch.inference_mode():
                ids = torch.tensor([self.prefix_ids], device=self.model.device)
                self._cache = self.model(input_ids=ids, use_cache=True).past_key_values
        return copy.deepcopy(self._cache)

    def scores(self, text: str) -> list[float]:
        """Sum of log p(label tokens | prompt) for every label: one pass over the text, one over the labels."""
        import torch

        ids = self.prompt_ids(text)
        shared = len(self.prefix_ids) if self.prefix_ids and ids[: len(self.prefix_ids)] == self.prefix_ids else 0
        device = self.model.device
        with torch.inference_mode():
            cache = self._prefix_cache() if shared else None
            out = self.model(input_ids=torch.tensor([ids[shared:]], device=device), past_key_values=cache,
                             use_cache=True)
            first = torch.log_softmax(out.logits[0, -1].float(), -1)
            scores = [float(first[cont[0]]) for cont in self.continuations]
            width = max(map(len, self.continuations))
            if width > 1:  # the labels' later tokens, all labels in one batch on the shared cache
                cache = out.past_key_values
                cache.batch_repeat_interleave(len(self.labels))
                pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
                rest = torch.full((len(self.labels), width - 1), pad, dtype=torch.long)
                for i, cont in enumerate(self.continuations):
                    rest[i, : len(cont) - 1] = torch.tensor(cont[:-1])
                # right padding only follows real tokens, so the causal mask keeps it out of every score used
                logp = torch.log_softmax(self.model(input_ids=rest.to(device), past_key_values=cache).logits.float(),
                                         -1)
                for i, cont in enumerate(self.continuations):
                    scores[i] += float(sum(logp[i, j - 1, cont[j]] for j in range(1, len(cont))))
        return scores

    def priors(self) -> list[float]:
        """Mean log-likelihood of each label when the text carries no content: the prompt's label bias."""
        rows = [self.scores(text) for text in CONTENT_FREE]
        return [sum(col) / len(col) for col in zip(*rows, strict=True)]


def label_log_likelihoods(model, tokenizer, text: str, labels: list[str]) -> list[float]:
    """Zero-shot label log-likelihoods for one text."""
    return LabelScorer(model, tokenizer, labels).scores(text)


def calibrated_scores(scores: list[float], priors: list[float]) -> list[float]:
    """Remove the label bias: log p(label | text) - log p(label | content-free)."""
    return [s - p for s, p in zip(scores, priors, strict=True)]
