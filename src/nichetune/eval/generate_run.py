"""Evaluate an sft / completion run against its base model on identical inputs.

Perplexity is computed on the supervised (response) tokens, reduced batch by batch. Answers
are decoded greedily (deterministic) for a sample of rows, scored by exact match, token F1,
ROUGE-L and glossary-term use, and shown side by side with the base model's. Forgetting is the
perplexity on general-domain text (BBC News articles) before and after tuning.
"""

from __future__ import annotations

import numpy as np
import torch

from ..stats.significance import paired_bootstrap, verdict
from .generation import generation_metrics, rouge_l, term_metrics


def perplexity(model, tokenizer, task, rows: list[dict], max_length: int, dtype) -> dict:
    from ..train.distributed import Dist
    from ..train.loop import evaluate

    items = task.items(task.encode(rows, tokenizer, max_length, train=False), max_length, False)
    return evaluate(model, task, items, batch_size=8, pad_id=tokenizer.pad_token_id, ctx=Dist(), dtype=dtype)


def _answers(model, tokenizer, rows: list[dict], max_new_tokens: int) -> list[str]:
    out = []
    with torch.inference_mode():
        for row in rows:  # sft runs always have a chat template (encoding checks it)
            prompt = [m for m in row["messages"] if m["role"] != "assistant"]
            ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)["input_ids"]
            gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
            out.append(tokenizer.decode(gen[0, ids.shape[1] :], skip_special_tokens=True).strip())
    return out


def general_text(n: int = 40) -> list[dict]:
    """General-domain held-out text for the forgetting check: BBC News articles (not the tuning domain)."""
    from ..data.catalog import load_dataset

    rows = load_dataset("bbc-news")
    step = max(1, len(rows) // n)
    return [{"text": r["text"]} for r in rows[::step][:n]]


def evaluate_generation(run_dir, rows: list[dict], *, samples: int = 20, max_new_tokens: int = 64,
                        glossary: list[str] | None = None, forbidden: list[str] | None = None,
                        general_rows: int = 40, reference: str | None = None) -> dict:
    """Tuned vs ``reference`` (another run directory; default the run's base model) on identical rows.

    Results are keyed ``base`` (the reference) and ``tuned`` (this run). ``general_rows`` BBC articles
    (0: none) measure forgetting as general-domain perplexity.
    """
    from ..hardware import pick_dtype
    from ..models.loading import load_causal_lm
    from ..run.directory import load_run
    from ..train.tasks import CausalTask

    dtype = pick_dtype("auto", "cpu")
    tuned, tokenizer, manifest, recipe = load_run(run_dir, dtype=dtype)
    if reference is None:
        base, base_tok = load_causal_lm(manifest["base_model"]["reference"], dtype="auto", device="cpu")
    else:
        base, base_tok, _, _ = load_run(reference, dtype=dtype)
    task = CausalTask(recipe.task, loss_on=recipe.train.loss_on)
    max_length = recipe.model.max_length
    result: dict = {"task": recipe.task, "n": len(rows), "reference": reference or "base model"}
    result["perplexity"] = {"base": perplexity(base, base_tok, task, rows, max_length, dtype),
                            "tuned": perplexity(tuned, tokenizer, task, rows, max_length, dtype)}
    result["primary"] = {"name": "perplexity", "value": result["perplexity"]["tuned"]["perplexity"]}
    if recipe.task == "sft":
        sample = rows[:samples]
        refs = [next(m["content"] for m in reversed(r["messages"]) if m["role"] == "assistant") for r in sample]
        tuned_out = _answers(tuned, tokenizer, sample, max_new_tokens)
        base_out = _answers(base, base_tok, sample, max_new_tokens)
        terms = glossary or sorted({r["term"] for r in rows if r.get("term")})
        result["answers"] = {
            "base": {**generation_metrics(base_out, refs), **term_metrics(base_out, refs, terms, forbidden)},
            "tuned": {**generation_metrics(tuned_out, refs), **term_metrics(tuned_out, refs, terms, forbidden)},
        }
        boot = _rouge_delta(base_out, tuned_out, refs)
        result["answers"]["rouge_l_delta"] = boot
        result["answers"]["verdict"] = verdict("ROUGE-L", boot["delta"], boot["ci_low"], boot["ci_high"],
                                               boot["p_value"])
        result["side_by_side"] = [{"id": r.get("id"), "prompt": next(m["content"] for m in r["messages"]
                                                                     if m["role"] == "user"),
                                   "reference": ref, "base": b, "tuned": t}
                                  for r, ref, b, t in zip(sample, refs, base_out, tuned_out, strict=True)]
    if general_rows:
        general = general_text(general_rows)
        completion = CausalTask("completion")
        result["forgetting"] = {
            "text": "BBC News articles (general domain)", "n": len(general),
            "base": perplexity(base, base_tok, completion, general, max_length, dtype),
            "tuned": perplexity(tuned, tokenizer, completion, general, max_length, dtype)}
    return result


def _rouge_delta(base_out: list[str], tuned_out: list[str], refs: list[str]) -> dict:
    """Paired bootstrap of the mean ROUGE-L difference (tuned - base) over the same prompts."""
    base_scores = np.array([rouge_l(b, r) for b, r in zip(base_out, refs, strict=True)])
    tuned_scores = np.array([rouge_l(t, r) for t, r in zip(tuned_out, refs, strict=True)])
    index = np.arange(len(refs))
    return paired_bootstrap(lambda _, scores: float(scores.mean()), index, base_scores, tuned_scores)
