"""Retrieval: chunks that are exact slices along the document's structure, reciprocal rank fusion by hand, BM25
against the Lucene formula written out, exact dense search against brute force, and a sealed index folder with
its bad inputs quarantined."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter

import numpy as np
import pytest

from nichetune.cli import main
from nichetune.errors import NichetuneError
from nichetune.retrieval.chunking import chunk_text
from nichetune.retrieval.documents import html_text, read_documents
from nichetune.retrieval.index import build_index, load_index, update_index
from nichetune.stats.ranking import reciprocal_rank_fusion

DOC = """# Compilers

A compiler translates source code into machine code. It reads the whole program first.

An interpreter runs a program line by line instead.

## Optimisation

Constant folding evaluates expressions at compile time. """ + " ".join(f"word{i}" for i in range(150)) + """

# Kernels

The kernel manages memory, processes and devices.
"""


def test_chunks_are_exact_slices_that_follow_headings_and_overlap_within_a_section():
    spans = chunk_text(DOC, max_chars=200, overlap=40)
    assert all(len(DOC[s.start:s.end]) <= 200 for s in spans)
    headings = [s.heading for s in spans]
    assert headings[0] == "Compilers" and "Compilers > Optimisation" in headings and headings[-1] == "Kernels"
    for s in spans:  # a chunk never crosses into another section
        section_starts = [DOC.index(h) for h in ("# Compilers", "## Optimisation", "# Kernels")]
        assert not any(s.start < cut < s.end for cut in section_starts)
    long_section = [s for s in spans if s.heading == "Compilers > Optimisation"]
    assert len(long_section) >= 3
    for a, b in zip(long_section, long_section[1:], strict=False):
        assert b.start < a.end and a.end - b.start <= 40  # each repeats at most `overlap` of the one before
    covered = set()
    for s in spans:
        covered.update(range(s.start, s.end))
    assert all(i in covered for i, ch in enumerate(DOC) if not ch.isspace())  # nothing is left out
    with pytest.raises(ValueError):
        chunk_text(DOC, max_chars=100, overlap=100)


def test_reciprocal_rank_fusion_by_hand():
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)
    assert [i for i, _ in reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]])] == ["a", "c", "b"]


def _corpus(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "compilers.md").write_text("# Compiler\n\nA compiler translates source code into machine code.\n")
    (docs / "kernel.html").write_text("<html><script>var x=1;</script><h1>Kernel</h1><p>The kernel manages memory "
                                      "and processes.</p></html>")
    (docs / "terms.jsonl").write_text(
        json.dumps({"id": "mutex", "title": "Mutex", "text": "A mutex guards shared memory between threads."})
        + "\n{broken\n" + json.dumps({"id": "x", "text": ""}) + "\n"
        + json.dumps({"id": "ftp", "text": "FTP moves files between hosts over networks."}) + "\n")
    (docs / "picture.png").write_bytes(b"\x89PNG")
    return docs


def test_documents_are_read_and_bad_inputs_quarantined_with_the_reason(tmp_path):
    docs, bad = read_documents([_corpus(tmp_path)])
    assert sorted(d.id for d in docs) == ["compilers", "ftp", "kernel", "mutex"]
    kernel = next(d for d in docs if d.id == "kernel")
    assert kernel.text.startswith("# Kernel") and "var x" not in kernel.text
    reasons = {b["source"].rsplit("/", 1)[-1]: b["reason"] for b in bad}
    assert reasons["terms.jsonl:2"].startswith("not JSON") and "field 'text'" in reasons["terms.jsonl:3"]
    assert "unsupported file type .png" in reasons["picture.png"]
    assert html_text("<p>a &amp; b</p><p>c</p>") == "a & b\n\nc"


@pytest.fixture(scope="module")
def index(tmp_path_factory, tiny_bert_dir):
    root = tmp_path_factory.mktemp("index")
    build_index([_corpus(root)], root / "idx", encoder=str(tiny_bert_dir), max_chars=200, overlap=20)
    return load_index(root / "idx")


def test_bm25_scores_follow_the_lucene_formula(index):
    """score = sum over query terms of log(1 + (N - df + .5) / (df + .5)) * tf / (tf + k1 (1 - b + b dl / avgdl)),
    k1 = 1.5, b = 0.75, written out here over the index's own tokens."""
    import bm25s

    tokens = bm25s.tokenize([c["text"] for c in index.chunks], stopwords="en", return_ids=False,
                            show_progress=False)
    avgdl = sum(map(len, tokens)) / len(tokens)

    def score(query: str, i: int) -> float:
        tf, total = Counter(tokens[i]), 0.0
        for term in query.split():
            df = sum(term in t for t in tokens)
            idf = math.log(1 + (len(tokens) - df + 0.5) / (df + 0.5))
            total += idf * tf[term] / (tf[term] + 1.5 * (1 - 0.75 + 0.75 * len(tokens[i]) / avgdl))
        return total

    query = "memory kernel"
    expected = sorted(((score(query, i), i) for i in range(len(tokens))), reverse=True)
    hits = index.search(query, k=2, mode="bm25")
    assert [index.chunks.index(h.chunk) for h in hits] == [i for s, i in expected[:2] if s > 0]
    _, scores = index.bm25.retrieve(bm25s.tokenize([query], stopwords="en", show_progress=False), k=2,
                                    show_progress=False)
    assert list(scores[0]) == pytest.approx([s for s, _ in expected[:2]], rel=1e-5)


def test_dense_search_is_exact_and_hybrid_fuses_both_lists(index):
    from nichetune.retrieval.index import Encoder

    query = "threads sharing memory"
    hits = index.search(query, k=3, mode="dense")
    vectors = index.vectors / np.linalg.norm(index.vectors, axis=1, keepdims=True)
    q = Encoder(index.manifest["encoder"])([query])[0]
    brute = np.argsort(-(vectors @ q), kind="stable")[:3]
    assert [index.chunks.index(h.chunk) for h in hits] == [int(i) for i in brute]
    assert hits[0].score == pytest.approx(float((vectors @ q)[brute[0]]), abs=1e-5)
    hybrid = index.search("kernel memory", k=2)
    assert hybrid[0].chunk["doc"] == "kernel" and hybrid[0].ranks["bm25"] == 1
    expected = 1 / (60 + hybrid[0].ranks["bm25"]) + 1 / (60 + hybrid[0].ranks["dense"])
    assert hybrid[0].score == pytest.approx(expected)


def test_the_index_folder_is_sealed_records_offsets_and_refuses_tampering(index, tmp_path):
    import hashlib

    manifest = index.manifest
    assert manifest["chunks"] == len(index.chunks) and manifest["quarantined"] == 3
    docs, _ = read_documents([_corpus(tmp_path)])
    by_id = {d.id: d for d in docs}
    for chunk in index.chunks:  # offsets point into the document the sha256 names
        doc = by_id[chunk["doc"]]
        assert doc.text[chunk["start"]:chunk["end"]] == chunk["text"]
        assert chunk["doc_sha256"] == hashlib.sha256(doc.text.encode()).hexdigest()
    with pytest.raises(NichetuneError, match="already exists"):
        build_index([tmp_path], index.folder)
    copy = tmp_path / "copy"
    shutil.copytree(index.folder, copy)  # the module's index stays intact for the other tests
    (copy / "chunks.jsonl").write_text("tampered\n")
    with pytest.raises(NichetuneError, match="does not match its manifest"):
        load_index(copy)


def test_index_build_and_search_from_the_command_line(tmp_path, tiny_bert_dir, capsys):
    docs = _corpus(tmp_path)
    assert main(["index", "build", str(docs), "--out", str(tmp_path / "i"), "--encoder", str(tiny_bert_dir)]) == 0
    assert "3 inputs quarantined" in capsys.readouterr().err
    assert main(["index", "search", str(tmp_path / "i"), "files between hosts", "-k", "1", "--json"]) == 0
    hit = json.loads(capsys.readouterr().out)[0]
    assert hit["doc"] == "ftp" and hit["ranks"]["bm25"] == 1
    assert main(["index", "search", str(tmp_path / "nope"), "x"]) == 1


def test_ranking_metrics_by_hand():
    from nichetune.stats.ranking import ndcg_at_k, recall_at_k, reciprocal_rank

    ranked = ["d3", "d1", "d7", "d2"]
    assert recall_at_k(ranked, {"d1", "d2", "d9"}, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, {"d1", "d2", "d9"}, 4) == pytest.approx(2 / 3)
    assert reciprocal_rank(ranked, {"d7", "d2"}) == pytest.approx(1 / 3) and reciprocal_rank(ranked, {"x"}) == 0
    # gains d1=2, d2=1: DCG@4 = 2/log2(3) + 1/log2(5); ideal = 2/log2(2) + 1/log2(3)
    expected = (2 / math.log2(3) + 1 / math.log2(5)) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, {"d1": 2, "d2": 1}, 4) == pytest.approx(expected)
    assert ndcg_at_k(ranked, {"d1": 2, "d2": 1}, 1) == 0.0  # d3 at rank 1 gains nothing
    assert ndcg_at_k(["d1", "d2"], {"d1": 2, "d2": 1}, 2) == pytest.approx(1.0)


def test_index_eval_scores_each_mode_on_labelled_questions(index, tmp_path, capsys):
    from nichetune.retrieval.evaluate import evaluate_index, read_questions

    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in [
        {"question": "kernel memory processes", "relevant": ["kernel"]},
        {"question": "files between hosts", "relevant": ["ftp"]},
        {"question": "source code machine code", "relevant": {"compilers": 2, "mutex": 0}}]) + "\n")
    result = evaluate_index(index, read_questions(questions), k=3)
    assert set(result["means"]) == {"hybrid", "bm25", "dense"}
    assert result["means"]["bm25"]["mrr"] == pytest.approx(1.0)  # each question names its document's words
    assert result["per_question"]["bm25"]["recall"] == [1.0, 1.0, 1.0]
    assert {v["verdict"] for v in result["verdicts"].values()} <= {"better", "worse", "not significantly different"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "x"}\n')
    with pytest.raises(NichetuneError, match="bad.jsonl:1: needs 'question'"):
        read_questions(bad)
    assert main(["index", "eval", str(index.folder), str(questions), "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "MRR" in out and "nDCG@3" in out and "hybrid retrieval" in out


def test_citations_and_quotes_are_checked_against_the_sources_they_name():
    from nichetune.retrieval.answer import check_citations

    sources = ["A mutex guards shared memory between threads.", "FTP moves files between hosts over networks."]
    text = ('A mutex "guards shared memory" so threads take turns [1]. FTP moves files between hosts [2]. '
            'It also "encrypts every packet" [2]. Kernels schedule everything [3].')
    checks = check_citations(text, sources)
    by = {(c["kind"], c["claim"][:20]): c for c in checks}
    assert by[("quote", "guards shared memory")]["supported"]
    assert by[("citation", 'A mutex "guards shar')]["supported"]
    assert by[("citation", "FTP moves files betw")]["supported"]
    assert not by[("quote", "encrypts every packe")]["supported"]
    assert by[("marker", "[3]")]["reason"] == "there is no source [3] (1 to 2)"
    assert not by[("citation", 'It also "encrypts ev')]["supported"]  # 1 of 3 content words in [2]
    uncited = check_citations('It said: "FTP moves files between hosts." That is all.', sources)
    assert [(c["kind"], c["supported"]) for c in uncited] == [("quote", True), ("answer", False)]
    assert uncited[1]["reason"] == "the answer cites no source"  # a quote holding a full stop is still found
    assert check_citations("", sources) == []


def test_ask_retrieves_answers_and_checks(index, tiny_llama_dir, capsys):
    from nichetune.retrieval.answer import ask, prompt

    answer = ask(index, "what moves files between hosts", str(tiny_llama_dir), k=2, max_tokens=12)
    assert answer.sources[0].chunk["doc"] == "ftp" and len(answer.sources) == 2
    assert "[1] FTP moves files" in prompt(answer.question, answer.sources)
    assert all(c["kind"] in ("quote", "citation", "marker") for c in answer.checks)
    assert main(["ask", str(index.folder), "what moves files between hosts", "--model", str(tiny_llama_dir),
                 "-k", "2", "--max-tokens", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sources"][0]["doc"] == "ftp" and out["sources"][0]["n"] == 1


def _pdf(text: str) -> bytes:
    """A one-page PDF whose text layer is ``text``, written out by hand (objects, xref, trailer)."""
    stream = f"BT /F1 12 Tf 72 712 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_pdf_text_is_read_and_a_broken_pdf_quarantined(tmp_path):
    (tmp_path / "manual.pdf").write_bytes(_pdf("A semaphore counts permits for threads."))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    docs, bad = read_documents([tmp_path])
    assert [d.text for d in docs] == ["A semaphore counts permits for threads."]
    assert len(bad) == 1 and bad[0]["source"].endswith("broken.pdf") and "cannot be read" in bad[0]["reason"]


def test_update_adds_replaces_and_removes_documents_without_re_encoding_the_rest(tmp_path, tiny_bert_dir):
    docs = _corpus(tmp_path)
    build_index([docs], tmp_path / "idx", encoder=str(tiny_bert_dir))
    before = load_index(tmp_path / "idx")
    kept = {c["id"]: before.vectors[i] for i, c in enumerate(before.chunks) if c["doc"] == "compilers"}
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "kernel.html").write_text("<h1>Kernel</h1><p>The kernel schedules processes on cores.</p>")
    (extra / "semaphore.md").write_text("# Semaphore\n\nA semaphore counts permits.\n")
    (extra / "compilers.md").write_text((docs / "compilers.md").read_text())  # the same text: left alone
    result = update_index(tmp_path / "idx", add=[extra], remove=["ftp"])
    assert (result["added"], result["replaced"], result["removed"], result["unchanged"]) == (
        ["semaphore"], ["kernel"], ["ftp"], ["compilers"])
    after = load_index(tmp_path / "idx")
    assert {c["doc"] for c in after.chunks} == {"compilers", "kernel", "mutex", "semaphore"}
    assert "schedules processes" in next(c["text"] for c in after.chunks if c["doc"] == "kernel")
    for i, c in enumerate(after.chunks):  # what stayed keeps its id and its vector, untouched
        if c["id"] in kept:
            np.testing.assert_array_equal(after.vectors[i], kept[c["id"]])
    assert after.search("semaphore permits", k=1, mode="bm25")[0].chunk["doc"] == "semaphore"
    assert all(h.chunk["doc"] != "ftp" for h in after.search("files between hosts", k=5, mode="bm25"))
    assert after.manifest["quarantined"] == 3  # the first build's bad inputs are still on record
    with pytest.raises(NichetuneError, match="has no document 'nope'"):
        update_index(tmp_path / "idx", remove=["nope"])
    assert main(["index", "update", str(tmp_path / "idx"), "--remove", "semaphore"]) == 0
    assert "semaphore" not in {c["doc"] for c in load_index(tmp_path / "idx").chunks}
