"""Score candidate labels by their likelihood under a causal LM (zero-shot classification)."""

from __future__ import annotations

DEFAULT_INSTRUCTION = "Classify the text into exactly one of these labels: {labels}. Answer with the label only."


def label_prompt_ids(tokenizer, text: str, labels: list[str], instruction: str = DEFAULT_INSTRUCTION) -> list[int]:
    """Prompt ids ending where the label should begin (chat template when available)."""
    question = f"{instruction.format(labels=', '.join(labels))}\n\nText: {text}"
    if tokenizer.chat_template:
        return list(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": question}], add_generation_prompt=True, return_dict=True
            )["input_ids"]
        )
    return tokenizer(question + "\nLabel:", add_special_tokens=True).input_ids


def label_log_likelihoods(model, tokenizer, text: str, labels: list[str]) -> list[float]:
    """Sum of log p(label tokens | prompt) for each label, one batched forward pass."""
    import torch

    prompt = label_prompt_ids(tokenizer, text, labels)
    sep = "" if tokenizer.chat_template else " "
    continuations = [tokenizer(sep + label, add_special_tokens=False).input_ids for label in labels]
    rows = [prompt + cont for cont in continuations]
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    with torch.inference_mode():
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float()
    logprobs = torch.log_softmax(logits[:, :-1], dim=-1)  # (L, T-1, V): position t predicts token t+1
    scores = []
    for i, cont in enumerate(continuations):
        start = len(prompt) - 1
        positions = torch.arange(start, start + len(cont))
        targets = torch.tensor(cont)
        scores.append(float(logprobs[i, positions, targets].sum()))
    return scores


# Content-free inputs for contextual calibration (Zhao et al. 2021, "Calibrate Before Use").
CONTENT_FREE = ("N/A", "[MASK]", "")


def label_priors(model, tokenizer, labels: list[str]) -> list[float]:
    """Mean log-likelihood of each label when the text carries no content: the model's label bias."""
    rows = [label_log_likelihoods(model, tokenizer, text, labels) for text in CONTENT_FREE]
    return [sum(col) / len(col) for col in zip(*rows, strict=True)]


def calibrated_scores(scores: list[float], priors: list[float]) -> list[float]:
    """Remove the label bias: log p(label | text) - log p(label | content-free)."""
    return [s - p for s, p in zip(scores, priors, strict=True)]
