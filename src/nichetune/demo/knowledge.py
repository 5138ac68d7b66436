"""Demo part 5: knowledge that changes, answered from retrieval with checked citations.

FOLDOC entries the jargon run never trained on (its validation and test terms, plus others) become an index;
the run's held-out test terms become labelled questions whose definitions are only in the index. The index is
evaluated (recall@k, MRR, nDCG per search mode), and the jargon run answers the questions with and without
retrieval (exact match, token F1, ROUGE-L, citation recall and precision, paired-bootstrap verdicts). It was
never taught to use sources, so RAFT examples are written from the validation terms (gold source among
distractors), a LoRA is trained on them, and it answers the same questions; three of its answers are shown with
their citation checks.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from .steps import SKIPPED, Steps

STEPS = 6
RUN, RAFT_RUN = "foldoc-sft-lora", "foldoc-raft-lora"


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _documents(run_dir: Path, folder: Path, entries: int) -> tuple[Path, Path, Path]:
    """Write the index's documents (no term the run trained on) and the questions about held-out terms."""
    from ..atomic import atomic_write_text
    from ..data.catalog import load_dataset
    from ..run.paths import RunPaths

    paths = RunPaths(run_dir)
    trained = {r["term"] for r in _rows(paths.split("train"))}
    held = {part: _rows(paths.split(part)) for part in ("validation", "test")}
    wanted = {r["term"] for rows in held.values() for r in rows}
    others = [r for r in load_dataset("foldoc") if r["term"] not in trained and r["term"] not in wanted]
    step = max(1, len(others) // max(1, entries - len(wanted)))
    chosen = [r for rows in held.values() for r in rows] + others[::step][: max(0, entries - len(wanted))]
    docs = [{"id": r["term"], "title": r["term"], "text": r["definition"]} for r in chosen]
    folder.mkdir(parents=True, exist_ok=True)
    files = (folder / "foldoc-docs.jsonl", folder / "questions.jsonl", folder / "raft-questions.jsonl")
    atomic_write_text(files[0], "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    for out, part in ((files[1], "test"), (files[2], "validation")):
        atomic_write_text(out, "".join(json.dumps({"question": f"What does {r['term']} mean in computing?",
                                                    "relevant": [r["term"]], "answer": r["definition"]},
                                                   ensure_ascii=False) + "\n" for r in held[part]))
    return files


def _index(docs: Path, folder: Path, fresh: bool, say):
    """The index of ``docs``, reused when it was built from exactly these documents."""
    import shutil

    from ..hashing import sha256_file
    from ..retrieval.index import build_index, load_index

    stamp = folder.with_name(folder.name + ".docs-sha256")
    digest = f"{sha256_file(docs)} pii=mask"  # the documents and how they were indexed
    if not fresh and folder.is_dir() and stamp.is_file() and stamp.read_text().strip() == digest:
        say(f"  reusing {folder} (built from the same documents; --fresh rebuilds)")
        return load_index(folder)
    if folder.exists():
        shutil.rmtree(folder)  # the demo's own index of other documents
    manifest = build_index([docs], folder, pii="mask")
    stamp.write_text(digest + "\n")
    found = manifest["pii_found"]
    say(f"  {len(manifest['documents'])} FOLDOC entries -> {manifest['chunks']} chunks (BM25 + MiniLM); PII masked "
        f"in {found['documents']} entries ({', '.join(f'{t} {n}' for t, n in found['by_type'].items()) or 'none'})")
    return load_index(folder)


def _evaluate(index, questions_file: Path, run_dir: Path, budget, fresh: bool, say) -> dict:
    from ..retrieval.evaluate import evaluate_index, read_questions

    questions = read_questions(questions_file)
    retrieval = evaluate_index(index, questions, k=10)
    for mode, m in retrieval["means"].items():
        say(f"  {mode:>6}: recall@10 {m['recall']:.3f}  MRR {m['mrr']:.3f}  nDCG@10 {m['ndcg']:.3f}")
    for v in retrieval["verdicts"].values():
        say(f"  {v['sentence']}")
    return {"retrieval": retrieval,
            "answers": _answers(index, questions[: budget.retrieval_answers], run_dir, fresh, say)}


def _answers(index, questions: list[dict], run_dir: Path, fresh: bool, say) -> dict:
    """The run's answers to ``questions`` with and without retrieval, scored; reused when the same run answered the
    same questions from the same index before (greedy decoding gives the same answers: 48 questions took minutes)."""
    from ..atomic import atomic_write_text
    from ..hashing import sha256_file
    from ..retrieval.answer_eval import evaluate_answers
    from ..run.paths import RunPaths

    k, max_tokens = 3, 64
    key = {"run": sha256_file(RunPaths(run_dir).manifest), "index": sha256_file(index.folder / "chunks.jsonl"),
           "questions": questions, "k": k, "max_tokens": max_tokens}
    cache = index.folder.parent / "answers" / f"{run_dir.name}.json"
    saved = json.loads(cache.read_text()) if not fresh and cache.is_file() else {}
    if saved.get("key") == key:
        say(f"  reusing the answers in {cache} (same run, index and questions; --fresh answers again)")
        answers = saved["answers"]
    else:
        answers = evaluate_answers(index, questions, run_dir, k=k, max_tokens=max_tokens,
                                   progress=lambda text: say(f"  {text}"))
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache, json.dumps({"key": key, "answers": answers}, default=float) + "\n")
    for who in ("without", "with"):
        m = answers["means"][who]
        say(f"  {who:>7} retrieval: token F1 {m['token_f1']:.3f}  ROUGE-L {m['rouge_l']:.3f}  "
            f"exact match {m['exact_match']:.3f}")
    m = answers["means"]["with"]
    say(f"  citations: recall {_num(m['citation_recall'])}, precision {_num(m['citation_precision'])} "
        "(span checks, no judge model)")
    for v in answers["verdicts"].values():
        say(f"  {v['sentence']}")
    say(f"  {answers['summary']}")
    return answers


def _raft_recipe(out: Path, raft_file: Path, budget) -> Path:
    """The jargon recipe, trained on the RAFT examples instead (longer rows: the sources are in the prompt)."""
    import yaml

    from ..atomic import atomic_write_text
    from .jargon import RECIPE

    recipe = {**RECIPE, "output_dir": str(out / "runs" / RAFT_RUN),
              "model": {**RECIPE["model"], "max_length": 512},
              "data": {"train": str(raft_file), "split": {"ratios": [0.8, 0.1, 0.1], "group_field": "group"}},
              # every other layer recomputed in the backward pass: this run alone peaked at 1.8 GB instead of
              # 2.2 GB, 15% slower; it was the demo's peak before
              "train": {**RECIPE["train"], "gradient_checkpointing": 2}}
    if budget.name == "quick":
        recipe["train"]["max_steps"] = 3
    path = out / "recipes" / f"{RAFT_RUN}.yaml"
    atomic_write_text(path, "# Written by `nichetune demo`: LoRA on RAFT examples (gold source among distractors)\n"
                      + yaml.safe_dump(recipe, sort_keys=False))
    return path


def _train_raft(out: Path, index, folder: Path, budget, fresh: bool, say) -> dict:
    from ..config.recipe import load_recipe
    from ..retrieval.raft import write_raft
    from .runs import train_or_reuse

    raft = write_raft(index, folder / "raft-questions.jsonl", folder / "raft.jsonl")
    say(f"  RAFT: {raft['rows']} examples from the validation terms ({raft['with_gold']} with the gold source, "
        f"{raft['without_gold']} without) in {raft['out']}")
    manifest = train_or_reuse(load_recipe(_raft_recipe(out, Path(raft["out"]), budget)), fresh=fresh, say=say)
    return {"raft": raft, "manifest": manifest}


def _compare(index, questions_file: Path, out: Path, folder: Path, evaluation: dict, budget, fresh: bool,
             say) -> dict:
    from ..retrieval.answer_eval import compare
    from ..retrieval.evaluate import read_questions
    from ..retrieval.report import write_report

    questions = read_questions(questions_file)[: budget.retrieval_answers]
    raft = _answers(index, questions, out / "runs" / RAFT_RUN, fresh, say)
    versus = compare(evaluation["answers"], raft, a_name=f"{RUN} with retrieval", b_name=f"{RAFT_RUN} with retrieval")
    say(f"  {versus['sentence']}")
    answers = {RUN: evaluation["answers"], RAFT_RUN: raft}
    report = write_report(folder / "eval", evaluation["retrieval"], answers, index=str(index.folder),
                          comparisons=[versus])
    return {"report": report, "comparison": versus,
            "retrieval": {k: v for k, v in evaluation["retrieval"].items() if k != "per_question"},
            "answers": {name: {k: v for k, v in a.items() if k != "rows"} for name, a in answers.items()}}


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _ask(index, questions_file: Path, run_dir: Path, say) -> list[dict]:
    from ..retrieval.answer import ask
    from ..retrieval.evaluate import read_questions

    shown = []
    for q in read_questions(questions_file)[:3]:
        answer = ask(index, q["question"], str(run_dir), k=3, max_tokens=80)
        say(f"  Q: {q['question']}\n     A: " + textwrap.shorten(answer.text or "(nothing)", 200, placeholder=" ..."))
        for n, hit in enumerate(answer.sources, start=1):
            say(f"     [{n}] {hit.chunk['doc']} (chars {hit.chunk['start']}-{hit.chunk['end']})")
        for c in answer.checks:
            say(f"     {'ok' if c['supported'] else 'UNSUPPORTED'} {c['kind']}: "
                f"{textwrap.shorten(c['claim'], 70, placeholder=' ...')} ({c['reason']})")
        shown.append({"question": q["question"], "answer": answer.text, "checks": answer.checks,
                      "sources": [h.chunk["doc"] for h in answer.sources]})
    return shown


def run_knowledge(steps: Steps, out: Path, budget, jargon: dict, *, fresh: bool) -> dict:
    run_dir = out / "runs" / RUN
    folder = out / "retrieval"
    index_dir = folder / "foldoc-index"
    trained = jargon["runs"].get(RUN, SKIPPED)
    files = steps.run(
        f"write {budget.index_entries} FOLDOC entries the jargon run never trained on, and questions about its "
        "held-out terms", lambda: _documents(run_dir, folder, budget.index_entries), needs=(trained,))
    index = steps.run("index them: chunks with overlap, BM25 + MiniLM, PII masked, sealed",
                      lambda: _index(files[0], index_dir, fresh, steps.say), needs=(files,),
                      command=f"nichetune index build {folder / 'foldoc-docs.jsonl'} --out {index_dir} --pii mask")
    evaluation = steps.run(
        "retrieval metrics per mode; the jargon run's answers with and without retrieval on held-out terms",
        lambda: _evaluate(index, files[1], run_dir, budget, fresh, steps.say), needs=(index,),
        command=f"nichetune index eval {index_dir} {folder / 'questions.jsonl'} --model {run_dir} "
                f"--out {folder / 'eval'}")
    raft = steps.run(
        "RAFT: examples with the gold source among distractors (from the validation terms), and a LoRA trained on "
        "them", lambda: _train_raft(out, index, folder, budget, fresh, steps.say), needs=(index,),
        command=f"nichetune index raft {index_dir} {folder / 'raft-questions.jsonl'} --out {folder / 'raft.jsonl'} "
                f"&& nichetune train {out / 'recipes' / (RAFT_RUN + '.yaml')}")
    result: dict = {"report": folder / "eval" / "report.html", "raft": raft}
    result["eval"] = steps.run(
        "the RAFT run's answers on the same held-out questions, against the jargon run's (both with retrieval)",
        lambda: _compare(index, files[1], out, folder, evaluation, budget, fresh, steps.say),
        needs=(evaluation, raft),
        command=f"nichetune index eval {index_dir} {folder / 'questions.jsonl'} --model {out / 'runs' / RAFT_RUN}")
    result["asked"] = steps.run(
        "ask the RAFT run three held-out questions: cited answers, every citation checked",
        lambda: {"answers": _ask(index, files[1], out / "runs" / RAFT_RUN, steps.say)}, needs=(index, raft),
        command=f"nichetune ask {index_dir} \"What does ... mean in computing?\" --model {out / 'runs' / RAFT_RUN}")
    return result
