"""Parity of an export with the run it came from, on the run's held-out rows.

Classifiers: the largest logit difference, the headline metric (accuracy or macro-F1) of both on the test
split with the change and a paired-bootstrap 95% interval, and how often they predict the same label.
Language models: the largest difference of next-token logits on the supervised positions, token accuracy
(pooled over rows, bootstrapped over rows) and perplexity of both. Both: size on disk, load time and
single-request latency. An export whose metric drops by more than ``tolerance`` points fails.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..data.readers import read_json_lines
from ..hardware import release_memory
from ..run.loading import load_run, read_run
from ..run.paths import RunPaths
from ..stats.classification import classification_metrics
from ..stats.significance import paired_bootstrap
from ..tasks import task_spec
from ..tasks.lexical import load_stack
from ..timing import percentiles, single_requests
from .formats import ExportFormat, Runner, folder_mb


def held_out_rows(paths, limit: int | None) -> tuple[list[dict], str]:
    """The run's test rows (else its validation rows), the first ``limit``; ``paths`` is the run's ``RunPaths``."""
    for split in ("test", "validation"):
        path = paths.split(split)
        if path.is_file():
            rows = read_json_lines(path)
            return (rows[:limit] if limit else rows), split
    raise FileNotFoundError(f"{paths.root} keeps no test or validation rows to check parity on")


def _latency(call, items: list, requests: int) -> dict:
    timed = percentiles(single_requests(call, items, requests))
    return {k: timed[k] for k in ("p50_ms", "p95_ms", "requests")}


def classifier_parity(run, runner: Runner, export_logits: np.ndarray, rows: list[dict], metric: str) -> dict:
    from ..tasks.scoring import classifier_logits

    labels = run.manifest.labels
    texts = [r["text"] for r in rows]
    y = np.array([labels.index(r["label"]) for r in rows])
    source = classifier_logits(run.model, run.tokenizer, texts, max_length=run.recipe.model.max_length,
                               lexical=run.lexical)

    def score(y_true, pred) -> float:
        return classification_metrics(y_true, pred, labels)[metric]

    src_pred, exp_pred = source.argmax(1), export_logits.argmax(1)
    boot = paired_bootstrap(score, y, src_pred, exp_pred)
    return {"metric": metric, "source": score(y, src_pred), "export": score(y, exp_pred), "change": boot["delta"],
            "ci_low": boot["ci_low"], "ci_high": boot["ci_high"],
            "max_logit_diff": float(np.abs(source - export_logits).max()),
            "same_prediction": float((src_pred == exp_pred).mean())}


def scored_rows(model, task, tokenizer, rows: list[dict], max_length: int):
    """Yields, row by row: (N_i, V) fp32 logits on the supervised positions, and (tokens, correct, nll).

    A generator, so a caller holds one row's logits at a time: over the vocabulary they are large (SmolLM2's
    49,152 columns are 20 MB for 100 positions; a held-out split's worth held at once, for two models, was most of
    an export's peak memory).
    """
    import torch

    from ..tasks.loss import token_loss_sum

    for item in task.items(task.encode(rows, tokenizer, max_length, train=False), max_length, False):
        with torch.inference_mode():  # never held across a yield: it is thread-wide, and two of these interleave
            batch = task.collate([item], tokenizer.pad_token_id)
            logits, targets = task.scored(model, batch)
            logits = logits.float()
            stats = (float(targets.numel()), float((logits.argmax(-1) == targets).sum()),
                     float(token_loss_sum(logits, targets)))
        yield logits, stats


def score_rows(model, task, tokenizer, rows: list[dict], max_length: int) -> None:
    """Run the model over ``rows`` as parity does, keeping nothing (for timing)."""
    for _ in scored_rows(model, task, tokenizer, rows, max_length):
        pass


GREEDY_PROMPTS = 5
GREEDY_TOKENS = 16


def _prompts(rows: list[dict]) -> list[str]:
    """A fixed prompt set from the held-out rows: each chat row's question, or a completion row's opening."""
    out = []
    for row in rows[:GREEDY_PROMPTS]:
        if "messages" in row:
            out.append(next(m["content"] for m in row["messages"] if m["role"] == "user"))
        else:
            out.append(" ".join(row["text"].split()[:24]))
    return out


def _prompt_ids(tokenizer, prompt: str, chat: bool):
    from ..infer.generate import chat_input_ids

    return chat_input_ids(tokenizer, prompt) if chat else tokenizer(prompt, return_tensors="pt").input_ids


def greedy_answers(model, tokenizer, prompts: list[str], chat: bool) -> list[str]:
    import torch

    answers = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = _prompt_ids(tokenizer, prompt, chat)
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=GREEDY_TOKENS,
                                 do_sample=False, top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
            answers.append(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
    return answers


def causal_parity(run, runner: Runner, rows: list[dict], fmt: ExportFormat | None = None,
                  folder: Path | None = None) -> dict:
    spec = task_spec(run.recipe.task)
    task = spec.build(None, run.recipe.train)
    max_length = run.recipe.model.max_length
    diff, source, export = 0.0, [], []  # per row: (tokens, correct, nll) of each; the logits are not kept
    for (src_logits, src_stats), (exp_logits, exp_stats) in zip(
            scored_rows(run.model, task, run.tokenizer, rows, max_length),
            scored_rows(runner.model, task, runner.tokenizer, rows, max_length), strict=True):
        diff = max(diff, float((src_logits - exp_logits).abs().max()))
        source.append(src_stats)
        export.append(exp_stats)
    tokens = np.array([s[0] for s in source])
    src_correct, exp_correct = np.array([s[1] for s in source]), np.array([e[1] for e in export])

    def pooled(total, correct) -> float:
        return float(correct.sum() / max(total.sum(), 1.0))

    boot = paired_bootstrap(pooled, tokens, src_correct, exp_correct)

    def perplexity(part) -> float:
        return float(np.exp(sum(p[2] for p in part) / max(sum(p[0] for p in part), 1.0)))

    prompts = _prompts(rows)
    source_answers = greedy_answers(run.model, run.tokenizer, prompts, spec.chat)
    export_answers = greedy_answers(runner.model, runner.tokenizer, prompts, spec.chat)
    same = [a == b for a, b in zip(source_answers, export_answers, strict=True)]
    native = None
    if fmt is not None and fmt.native_check is not None:
        rendered = [run.tokenizer.decode(_prompt_ids(run.tokenizer, p, spec.chat)[0]) for p in prompts]
        native = fmt.native_check(folder, rendered, GREEDY_TOKENS)
        if native.get("ran"):
            native["same_answers"] = sum(a.strip() == b.strip()
                                         for a, b in zip(native.pop("answers"), source_answers, strict=True))
    return {"metric": "token_accuracy", "source": pooled(tokens, src_correct), "export": pooled(tokens, exp_correct),
            "change": boot["delta"], "ci_low": boot["ci_low"], "ci_high": boot["ci_high"], "max_logit_diff": diff,
            "perplexity": {"source": perplexity(source), "export": perplexity(export)},
            "greedy": {"prompts": len(prompts), "new_tokens": GREEDY_TOKENS, "same_answers": sum(same),
                       **({"native_runtime": native} if native is not None else {}),
                       "examples": [{"prompt": p, "source": a, "export": b}
                                    for p, a, b in zip(prompts, source_answers, export_answers, strict=True)]}}


def parity_report(run_dir: str | Path, fmt: ExportFormat, folder: Path, *, tolerance: float = 0.5,
                  rows_limit: int | None = None, requests: int = 20) -> dict:
    """Load ``folder`` as ``fmt`` does and compare it with the run in ``run_dir`` on the run's held-out rows.

    The export loads first and the run after it, so that the export's loading (GGUF's dequantized arrays, an int8
    model's float copy) never stacks on the run's weights. ``tolerance`` is in points (0.5 = half a percentage point
    of accuracy, macro-F1 or token accuracy).
    """
    paths = RunPaths(run_dir)
    manifest, recipe = read_run(paths.root)
    rows, split = held_out_rows(paths, rows_limit)
    max_length = recipe.model.max_length
    start = time.perf_counter()
    runner = fmt.load(folder, manifest.head, max_length)
    load_s = time.perf_counter() - start
    release_memory()  # what loading left behind goes back before the run's weights load
    run = load_run(paths.root)
    if task_spec(run.recipe.task).labelled:
        texts = [r["text"] for r in rows]
        isolated = fmt.isolated_logits
        export_logits = isolated(folder, texts) if isolated else runner.logits(texts)
        stack = load_stack(folder)  # the export carries the run's lexical stack; whoever serves it applies it
        if stack is not None:
            export_logits = stack.apply(texts, export_logits)
        metric = run.recipe.headline_metric()
        quality = classifier_parity(run, runner, export_logits, rows, metric)
        latency = _latency(runner.logits, texts, requests)
        quality["ran_without_torch"] = bool(isolated)
    else:
        quality = causal_parity(run, runner, rows, fmt, folder)
        spec = task_spec(run.recipe.task)
        task = spec.build(None, run.recipe.train)

        def forward(batch_rows):
            score_rows(runner.model, task, runner.tokenizer, batch_rows, max_length)

        latency = _latency(forward, rows, requests)
    passed = quality["change"] >= -tolerance / 100
    return {"status": "passed" if passed else "failed", "tolerance_points": tolerance, "split": split,
            "rows": len(rows), **quality, "disk_mb": folder_mb(folder), "load_s": load_s, **latency,
            "reason": None if passed else (f"{quality['metric']} dropped by {-100 * quality['change']:.2f} points "
                                           f"(tolerance {tolerance:g})")}
