"""The retrieval report: how well the index retrieves per search mode, and what retrieval adds to the answers,
written as ``retrieval-eval.json`` and a self-contained ``report.html``."""

from __future__ import annotations

import json
from pathlib import Path

from ..html_report import bar_chart, esc, page, table

JSON_NAME, HTML_NAME = "retrieval-eval.json", "report.html"


def _r(value):
    return round(value, 4) if isinstance(value, float) else ("n/a" if value is None else value)


def _retrieval(result: dict) -> list[tuple[str, str]]:
    k = result["k"]
    rows = [{"mode": mode, f"recall@{k}": _r(m["recall"]), "MRR": _r(m["mrr"]), f"nDCG@{k}": _r(m["ndcg"])}
            for mode, m in result["means"].items()]
    sentences = "".join(f"<p>{esc(v['sentence'])}</p>" for v in result["verdicts"].values())
    chart = bar_chart([(mode, m["ndcg"]) for mode, m in result["means"].items()], title=f"nDCG@{k} per mode")
    return [(f"Retrieval on {result['questions']} labelled questions",
             table(rows, ["mode", f"recall@{k}", "MRR", f"nDCG@{k}"]) + chart + sentences
             + '<p class="muted">Relevance is judged per document (trec_eval conventions: linear gains, each '
               "document counted at its best chunk).</p>")]


def _answers(result: dict, model: str) -> list[tuple[str, str]]:
    names = list(result["verdicts"])
    rows = [{"answers": who, **{n: _r(result["means"][key][n]) for n in names}}
            for who, key in (("without retrieval (closed book)", "without"), ("with retrieval", "with"))]
    m = result["means"]["with"]
    sentences = "".join(f"<p><b>{esc(v['verdict'])}</b>: {esc(v['sentence'])}</p>" for v in result["verdicts"].values())
    cites = (f"<p>With retrieval, {_r(m['citation_recall'])} of the answers' statements cite a source that supports "
             f"them (citation recall) and {_r(m['citation_precision'])} of their citations and quotes are supported "
             f"(citation precision), by span checks without a judge model; a relevant document was among the "
             f"{result['k']} sources for {_r(m['gold_retrieved'])} of the questions.</p>")
    examples = [{"question": r["question"], "reference": r["reference"], "without retrieval": r["without"],
                 "with retrieval": r["with"], "citation recall": _r(r["citation_recall"])} for r in result["rows"]]
    return [(f"Answers with and without retrieval: {model} ({result['questions']} questions)",
             f"<p><b>{esc(result['summary'])}</b></p>" + table(rows, ["answers", *names]) + sentences + cites),
            (f"Answers side by side: {model}", table(examples, list(examples[0]) if examples else [], limit=20))]


def write_report(out: str | Path, retrieval: dict, answers: dict[str, dict] | None = None, *, index: str,
                 comparisons: list[dict] = ()) -> Path:
    """Write ``OUT/retrieval-eval.json`` and ``OUT/report.html``; return the page's path.

    ``answers``: ``evaluate_answers`` results by model; ``comparisons``: verdicts between models (``compare``)."""
    from ..atomic import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    answers = answers or {}
    data = {"index": index, "retrieval": {k: v for k, v in retrieval.items() if k != "per_question"},
            "answers": answers, "comparisons": list(comparisons)}
    atomic_write_text(out / JSON_NAME, json.dumps(data, indent=1, default=str) + "\n")
    sections = _retrieval(retrieval)
    if comparisons:
        sections.append(("Models compared on the same questions, both with retrieval",
                         "".join(f"<p><b>{esc(c['verdict'])}</b>: {esc(c['sentence'])}</p>" for c in comparisons)))
    for model, result in answers.items():
        sections += _answers(result, model)
    subtitle = f"index {index}" + (f"; answers by {', '.join(answers)}" if answers else "")
    atomic_write_text(out / HTML_NAME, page("Retrieval report", sections, subtitle))
    return out / HTML_NAME
