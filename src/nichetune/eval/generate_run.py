"""Evaluate an sft / completion run against its base model on identical inputs.

Perplexity is computed on the supervised (response) tokens, reduced batch by batch. Answers
are decoded greedily (deterministic) for a sample of rows, scored by exact match, token F1,
ROUGE-L and glossary-term use, and shown side by side with the base model's. Forgetting is the
perplexity on general-domain text (BBC News articles) before and after tuning.
"""

from __future__ import annotations

from ..infer.greedy import greedy_chat
from ..tasks.scoring import score_rows
from .evaluators import GeneratorInputs, run_evaluators


def _answers(model, tokenizer, rows: list[dict], max_new_tokens: int) -> list[str]:
    # sft runs always have a chat template (encoding checks it)
    return greedy_chat(model, tokenizer, [[m for m in row["messages"] if m["role"] != "assistant"] for row in rows],
                       max_new_tokens)


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
    from ..methods.registry import METHODS
    from ..models.loading import load_causal_lm
    from ..run.loading import base_model, load_run
    from ..tasks import task_spec

    dtype = pick_dtype("auto", "cpu")
    run = load_run(run_dir, dtype=dtype)
    recipe = run.recipe
    if reference is None:
        base = load_causal_lm(base_model(run.manifest, recipe), dtype="auto", device="cpu")
    else:
        other = load_run(reference, dtype=dtype)
        base = (other.model, other.tokenizer)
    spec = task_spec(recipe.task)
    max_length = recipe.model.max_length

    def score(model, tokenizer, task, part: list[dict]) -> dict:
        return score_rows(model, task, tokenizer, part, max_length, dtype=dtype)

    def answer(model, tokenizer, part: list[dict]) -> list[str]:
        return _answers(model, tokenizer, part, max_new_tokens)

    general = general_text(general_rows) if general_rows else []
    x = GeneratorInputs(
        rows=rows, tuned=(run.model, run.tokenizer), base=base, chat=spec.chat, score=score, answer=answer,
        # a virtual-token run scores on full logits (its positions shift); the base model is scored the same way
        task=spec.build(None, recipe.train, virtual_tokens=METHODS[recipe.method.name].virtual_tokens),
        plain_text_task=task_spec("completion").build(None, recipe.train), general_rows=general,
        general_text="BBC News articles (general domain)", samples=samples, glossary=glossary, forbidden=forbidden)
    sections = run_evaluators(run.manifest.head, x)
    result: dict = {"task": recipe.task, "n": len(rows), "reference": reference or "base model", **sections,
                    "primary": {"name": "perplexity", "value": sections["perplexity"]["tuned"]["perplexity"]}}
    if "answers" in sections:
        result["side_by_side"] = [
            {"id": r.get("id"), "prompt": next(m["content"] for m in r["messages"] if m["role"] == "user"),
             "reference": ref, "base": b, "tuned": t}
            for r, ref, b, t in zip(x.sample, x.references, x.answers["base"], x.answers["tuned"], strict=True)]
    return result
