"""Demo part 5: knowledge that changes, answered from retrieval with checked citations.

FOLDOC entries the jargon run never trained on (its validation and test terms, plus others) become an index;
the run's held-out test terms become labelled questions whose definitions are only in the index. The index is
evaluated (recall@k, MRR, nDCG per search mode), the tuned SmolLM2 answers the same questions with and without
retrieval (exact match, token F1, ROUGE-L, citation recall and precision, paired-bootstrap verdicts), three
answers are shown with their citation checks, and RAFT training data is written from the validation terms.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from .steps import SKIPPED, Steps

STEPS = 4


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
    digest = sha256_file(docs)
    if not fresh and folder.is_dir() and stamp.is_file() and stamp.read_text().strip() == digest:
        say(f"  reusing {folder} (built from the same documents; --fresh rebuilds)")
        return load_index(folder)
    if folder.exists():
        shutil.rmtree(folder)  # the demo's own index of other documents
    manifest = build_index([docs], folder)
    stamp.write_text(digest + "\n")
    say(f"  {len(manifest['documents'])} FOLDOC entries -> {manifest['chunks']} chunks (BM25 + MiniLM)")
    return load_index(folder)


def _evaluate(index, questions_file: Path, run_dir: Path, folder: Path, budget, say) -> dict:
    from ..retrieval.answer_eval import evaluate_answers
    from ..retrieval.evaluate import evaluate_index, read_questions
    from ..retrieval.report import write_report

    questions = read_questions(questions_file)
    retrieval = evaluate_index(index, questions, k=10)
    for mode, m in retrieval["means"].items():
        say(f"  {mode:>6}: recall@10 {m['recall']:.3f}  MRR {m['mrr']:.3f}  nDCG@10 {m['ndcg']:.3f}")
    for v in retrieval["verdicts"].values():
        say(f"  {v['sentence']}")
    answers = evaluate_answers(index, questions[: budget.samples * 2], run_dir, k=3, max_tokens=64,
                               progress=lambda text: say(f"  {text}"))
    for who in ("without", "with"):
        m = answers["means"][who]
        say(f"  {who:>7} retrieval: token F1 {m['token_f1']:.3f}  ROUGE-L {m['rouge_l']:.3f}  "
            f"exact match {m['exact_match']:.3f}")
    m = answers["means"]["with"]
    say(f"  citations: recall {_num(m['citation_recall'])}, precision {_num(m['citation_precision'])} "
        "(span checks, no judge model)")
    for v in answers["verdicts"].values():
        say(f"  {v['sentence']}")
    report = write_report(folder / "eval", retrieval, answers, index=str(index.folder), model=str(run_dir))
    return {"report": report, "retrieval": {k: v for k, v in retrieval.items() if k != "per_question"},
            "answers": {k: v for k, v in answers.items() if k != "rows"}, "examples": answers["rows"][:5]}


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
    from ..retrieval.raft import write_raft

    run_dir = out / "runs" / "foldoc-sft-lora"
    folder = out / "retrieval"
    index_dir = folder / "foldoc-index"
    trained = jargon["runs"].get("foldoc-sft-lora", SKIPPED)
    files = steps.run(
        f"index {budget.index_entries} FOLDOC entries the jargon run never trained on (BM25 + MiniLM, "
        "chunked with overlap, sealed)",
        lambda: _documents(run_dir, folder, budget.index_entries), needs=(trained,),
        command=f"nichetune index build {folder / 'foldoc-docs.jsonl'} --out {index_dir}")
    index = steps.run("load or build the index", lambda: _index(files[0], index_dir, fresh, steps.say),
                      needs=(files,)) if files is not SKIPPED else SKIPPED
    result: dict = {"report": folder / "eval" / "report.html"}
    result["eval"] = steps.run(
        "retrieval metrics per mode, and the tuned model's answers with and without retrieval on held-out terms",
        lambda: _evaluate(index, files[1], run_dir, folder, budget, steps.say), needs=(index,),
        command=f"nichetune index eval {index_dir} {folder / 'questions.jsonl'} --model {run_dir} "
                f"--out {folder / 'eval'}")
    result["asked"] = steps.run(
        "ask three held-out questions: cited answers, every citation checked; RAFT data from the validation terms",
        lambda: {"answers": _ask(index, files[1], run_dir, steps.say),
                 "raft": write_raft(index, files[2], folder / "raft.jsonl")}, needs=(index,),
        command=f"nichetune ask {index_dir} \"What does ... mean in computing?\" --model {run_dir} && "
                f"nichetune index raft {index_dir} {folder / 'raft-questions.jsonl'} --out {folder / 'raft.jsonl'}")
    if result["asked"] is not SKIPPED:
        raft = result["asked"]["raft"]
        steps.say(f"  RAFT: {raft['rows']} examples ({raft['with_gold']} with the gold source, "
                  f"{raft['without_gold']} without) in {raft['out']}")
    return result
