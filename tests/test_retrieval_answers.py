"""What retrieval adds, measured: answer metrics with and without it, citation scores by span checks, RAFT training
data, re-ranking, faiss search, and the index plan `recommend --knowledge changing` writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nichetune.cli import main
from nichetune.errors import NichetuneError
from nichetune.retrieval.index import build_index, load_index
from tiny_data import write_jsonl

TERMS = {  # each definition holds words no other one has, so BM25 finds it whatever the tiny encoder says
    "mutex": "A mutex guards shared memory between threads.",
    "ftp": "FTP moves files between hosts over networks.",
    "kernel": "The kernel schedules processes and manages memory pages.",
    "compiler": "A compiler translates source code into machine code.",
    "cache": "A cache keeps recently used data close to the processor.",
    "socket": "A socket is an endpoint for sending bytes across connections.",
}
QUESTIONS = [{"question": f"What is a {term}? {' '.join(text.split()[2:5])}", "relevant": [term], "answer": text}
             for term, text in TERMS.items()]


@pytest.fixture(scope="module")
def terms_index(tmp_path_factory, tiny_bert_dir):
    root = tmp_path_factory.mktemp("terms")
    docs = write_jsonl(root / "terms.jsonl", [{"id": t, "title": t, "text": x} for t, x in TERMS.items()])
    build_index([docs], root / "idx", encoder=str(tiny_bert_dir))
    write_jsonl(root / "questions.jsonl", QUESTIONS)
    return load_index(root / "idx")


def test_citation_scores_by_hand():
    from nichetune.retrieval.answer import citation_scores

    sources = ["A mutex guards shared memory between threads.", "FTP moves files between hosts over networks."]
    # statements: 1 supported by [1]; 2 cites [2] which does not support it; 3 cites nothing; quote in [1]
    text = ('A mutex guards shared memory [1]. Threads compile kernels quickly [2]. Nothing else matters. '
            'It "guards shared memory" [1].')
    s = citation_scores(text, sources)
    assert s["statements"] == 4
    assert s["recall"] == pytest.approx(2 / 4)  # statements 1 and 4 cite a source that supports them
    # claims: citations (1,[1]) ok, (2,[2]) not, (4,[1]) ok ("guards shared memory": 3 of 3 words); quote ok
    assert (s["citations"], s["precision"]) == (4, pytest.approx(3 / 4))
    bad_marker = citation_scores("FTP moves files between hosts [2] [7].", sources)
    assert bad_marker["precision"] == pytest.approx(1 / 2) and bad_marker["recall"] == 1.0
    assert citation_scores("", sources) == {"recall": None, "precision": None, "statements": 0, "citations": 0}


def test_answers_with_and_without_retrieval_are_scored_on_the_same_questions(terms_index, tiny_llama_dir):
    from nichetune.eval.generation import exact_match, rouge_l, token_f1
    from nichetune.infer.loading import load_causal_lm
    from nichetune.retrieval.answer import MARKER
    from nichetune.retrieval.answer_eval import evaluate_answers
    from nichetune.retrieval.evaluate import read_questions

    questions = read_questions(terms_index.folder.parent / "questions.jsonl")
    model = load_causal_lm(str(tiny_llama_dir), dtype="fp32", device="cpu")
    result = evaluate_answers(terms_index, questions, model, k=2, max_tokens=6)
    rows = result["rows"]
    assert result["questions"] == len(rows) == len(TERMS)
    for r, q in zip(rows, questions, strict=True):
        plain = " ".join(MARKER.sub("", r["with"]).split())
        assert r["token_f1_with"] == pytest.approx(token_f1(plain, q["answer"]))
        assert r["rouge_l_without"] == pytest.approx(rouge_l(r["without"], q["answer"]))
        assert r["exact_match_with"] == exact_match(plain, q["answer"])
        assert len(r["sources"]) == 2
    assert all(r["gold_retrieved"] for r in rows)  # BM25 finds each definition by its own words
    for name in ("exact_match", "token_f1", "rouge_l"):
        mean_with = np.mean([r[f"{name}_with"] for r in rows])
        assert result["means"]["with"][name] == pytest.approx(mean_with)
        v = result["verdicts"][name]
        assert v["delta"] == pytest.approx(mean_with - np.mean([r[f"{name}_without"] for r in rows]))
        assert v["ci_low"] <= v["delta"] <= v["ci_high"] and "without retrieval" in v["sentence"]
    from nichetune.retrieval.answer_eval import compare

    shifted = {"rows": [{**r, "token_f1_with": r["token_f1_with"] + 0.25} for r in rows]}
    c = compare(result, shifted, a_name="the tiny model", b_name="the better one")
    assert c["delta"] == pytest.approx(0.25) and c["ci_low"] == pytest.approx(0.25)  # every question moved 0.25
    assert c["verdict"] == "better" and c["sentence"].startswith("The better one is better than the tiny model")
    with pytest.raises(NichetuneError, match="not on the same questions"):
        compare(result, {"rows": rows[1:]}, a_name="a", b_name="b")
    no_answer = [{"question": "x", "gains": {"ftp": 1.0}}]
    with pytest.raises(NichetuneError, match="no reference 'answer'"):
        evaluate_answers(terms_index, no_answer, model)


def test_index_eval_with_a_model_writes_the_report(terms_index, tiny_llama_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["index", "eval", str(terms_index.folder), str(terms_index.folder.parent / "questions.jsonl"),
                 "-k", "3", "--model", str(tiny_llama_dir), "--sources", "2", "--max-tokens", "4",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "with retrieval" in printed and "citation recall" in printed
    data = json.loads((out / "retrieval-eval.json").read_text())
    assert data["retrieval"]["means"]["bm25"]["mrr"] == pytest.approx(1.0)
    assert set(data["answers"][str(tiny_llama_dir)]["verdicts"]) == {"exact_match", "token_f1", "rouge_l"}
    page = (out / "report.html").read_text()
    assert "Answers with and without retrieval" in page and "nDCG@3" in page


def test_raft_rows_hold_the_gold_source_for_the_stated_share_and_cite_it(terms_index, tmp_path):
    from nichetune.data.provenance import read_artifact_manifest
    from nichetune.retrieval.answer import MARKER
    from nichetune.retrieval.evaluate import read_questions
    from nichetune.retrieval.raft import NO_ANSWER, raft_examples

    questions = read_questions(terms_index.folder.parent / "questions.jsonl")
    rows = raft_examples(terms_index, questions, distractors=2, p_gold=0.5, seed=3)
    assert sum(r["gold_in_sources"] for r in rows) == 3  # exactly round(0.5 * 6)
    for r, q in zip(rows, questions, strict=True):
        ids = r["source_chunks"].split()
        assert len(ids) == 3  # gold + 2 distractors, or 3 distractors
        docs = [next(c["doc"] for c in terms_index.chunks if c["id"] == i) for i in ids]
        reply = r["messages"][-1]["content"]
        if r["gold_in_sources"]:
            n = ids.index(r["gold_chunk"]) + 1
            assert docs.count(next(iter(q["gains"]))) == 1
            assert set(MARKER.findall(reply)) == {str(n)}  # cites the gold source, and only it
            assert MARKER.sub("", reply).replace(" .", ".") == q["answer"]
            numbered = r["messages"][1]["content"].split(f"[{n}] ", 1)[1]
            assert numbered.split("\n\n")[0].endswith(q["answer"])  # source [n] is the gold chunk
        else:
            assert next(iter(q["gains"])) not in docs and reply == q["answer"]
    abstaining = raft_examples(terms_index, questions, distractors=2, p_gold=0.0, abstain=True)
    assert all(r["messages"][-1]["content"] == NO_ANSWER for r in abstaining)
    # the command writes an SFT file that the data validator reads, with provenance beside it
    out = tmp_path / "raft.jsonl"
    assert main(["index", "raft", str(terms_index.folder), str(terms_index.folder.parent / "questions.jsonl"),
                 "--out", str(out), "--distractors", "2", "--p-gold", "0.5", "--seed", "3"]) == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows
    lineage = read_artifact_manifest(out)["lineage"][-1]
    assert lineage["step"] == "raft" and lineage["with_gold"] == 3 and lineage["params"]["p_gold"] == 0.5
    assert main(["data", "validate", str(out), "--task", "sft", "--quarantine", str(tmp_path / "q.jsonl")]) == 0


def test_a_reranker_reorders_the_fused_candidates_by_its_scores(terms_index, tiny_llama_dir):
    import torch

    from nichetune.infer.loading import load_causal_lm
    from nichetune.retrieval.rerank import JUDGE, Reranker, load_reranker

    prefer = Reranker("test", lambda q, texts: np.array([1.0 if "socket" in t else 0.0 for t in texts]))
    hits = terms_index.search("mutex guards shared memory", k=2, reranker=prefer, rerank_pool=6)
    assert "socket" in hits[0].chunk["text"] and hits[0].ranks["rerank"] == 1
    lm = load_reranker(f"lm:{tiny_llama_dir}")
    passages = [TERMS["ftp"], TERMS["mutex"]]
    model, tok = load_causal_lm(str(tiny_llama_dir), dtype="fp32", device="cpu")
    expected = []
    for p in passages:  # the log-odds of "yes" over "no" for the next token, computed here by hand
        ids = tok.apply_chat_template([{"role": "user", "content": JUDGE.format(passage=p, question="q")}],
                                      add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
        with torch.inference_mode():
            logp = model(input_ids=ids).logits[0, -1].log_softmax(-1)
        yes, no = (tok.encode(w, add_special_tokens=False)[0] for w in ("yes", "no"))
        expected.append(float(logp[yes] - logp[no]))
    assert lm.scores("q", passages) == pytest.approx(expected, abs=1e-5)
    with pytest.raises(NichetuneError, match="KIND:MODEL"):
        load_reranker("bm25")


def test_faiss_search_finds_what_exact_search_finds(tmp_path, tiny_bert_dir, terms_index):
    from nichetune.retrieval.index import _write_faiss

    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(4000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    _write_faiss(tmp_path / "g.faiss", vectors)
    graph = faiss.read_index(str(tmp_path / "g.faiss"))
    graph.hnsw.efSearch = 256
    queries = rng.normal(size=(50, 32)).astype(np.float32)
    _, found = graph.search(queries, 10)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
    assert recall >= 0.95
    docs = terms_index.folder.parent / "terms.jsonl"  # the same documents, searched by a graph
    assert main(["index", "build", str(docs), "--out", str(tmp_path / "f"), "--encoder", str(tiny_bert_dir),
                 "--dense-search", "faiss"]) == 0
    approx = load_index(tmp_path / "f")
    assert approx.manifest["dense_search"] == "faiss" and (tmp_path / "f" / "vectors.faiss").is_file()
    for q in QUESTIONS:
        a = approx.search(q["question"], k=4, mode="dense")
        b = terms_index.search(q["question"], k=4, mode="dense")
        assert [h.chunk["doc"] for h in a] == [h.chunk["doc"] for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-6)


def test_recommend_for_changing_knowledge_writes_an_index_plan_that_index_build_runs(tmp_path, monkeypatch, capsys):
    from nichetune.config.recipe import load_recipe
    from tiny_data import chat_rows

    monkeypatch.chdir(tmp_path)
    data = write_jsonl(tmp_path / "chat.jsonl", chat_rows(40))
    docs = write_jsonl(tmp_path / "terms.jsonl", [{"id": t, "text": x} for t, x in TERMS.items()])
    assert main(["recommend", "--data", str(data), "--knowledge", "changing", "--docs", str(docs),
                 "--out", "plan.yaml"]) == 0
    out = capsys.readouterr().out
    assert "index plan" in out and "nichetune index build --recipe plan.yaml" in out
    recipe = load_recipe(tmp_path / "plan.yaml")
    assert recipe.deploy.retrieval and recipe.retrieval.docs == [str(docs)]
    assert recipe.retrieval.index == "indexes/terms" and recipe.retrieval.k == 3
    assert main(["index", "build", "--recipe", "plan.yaml"]) == 0
    built = load_index(tmp_path / "indexes" / "terms")
    assert built.manifest["encoder"] == "minilm-l6" and len(built.manifest["documents"]) == len(TERMS)
    assert built.search("which endpoint sends bytes across connections", k=1)[0].chunk["doc"] == "socket"
    assert main(["recommend", "--data", str(data), "--knowledge", "changing", "--out", "bare.yaml"]) == 0
    assert "--docs FILES" in capsys.readouterr().out and load_recipe(tmp_path / "bare.yaml").retrieval is None
    assert main(["index", "build", "--recipe", "bare.yaml"]) != 0
    assert "bare.yaml has no retrieval section" in capsys.readouterr().err


def test_documents_follow_the_training_data_pii_rules_and_repeated_ids_are_quarantined(tmp_path, tiny_bert_dir):
    from nichetune.retrieval.documents import Document, screen_documents

    rows = [{"id": "a", "text": "Mail jane.doe@example.com or call +1 415 555 0133 about the mutex."},
            {"id": "b", "text": "FTP moves files between hosts."},
            {"id": "a", "text": "A second document with the first one's id."}]
    docs = write_jsonl(tmp_path / "docs.jsonl", rows)
    kept, bad, found = screen_documents(
        [Document(r["id"], f"docs.jsonl:{n}", r["text"], "") for n, r in enumerate(rows, start=1)], "mask")
    assert [d.id for d in kept] == ["a", "b"] and "[EMAIL]" in kept[0].text and "example.com" not in kept[0].text
    assert bad == [{"source": "docs.jsonl:3", "reason": "duplicate document id 'a' (first at docs.jsonl:1)"}]
    assert found["per_document"] == {"a": {"EMAIL": 1, "PHONE": 1}}
    build_index([docs], tmp_path / "masked", encoder=str(tiny_bert_dir), pii="mask")
    masked = load_index(tmp_path / "masked")
    assert masked.manifest["pii_found"] == {"documents": 1, "by_type": {"EMAIL": 1, "PHONE": 1}}
    assert not any("jane" in c["text"] for c in masked.chunks) and "[EMAIL]" in masked.chunks[0]["text"]
    build_index([docs], tmp_path / "strict", encoder=str(tiny_bert_dir), pii="quarantine")
    strict = load_index(tmp_path / "strict")
    assert [d["id"] for d in strict.manifest["documents"]] == ["b"]
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "strict" / "quarantine.jsonl").open()]
    assert "holds PII (EMAIL, PHONE); --pii mask indexes it masked" in reasons
    kept_index = build_index([docs], tmp_path / "kept", encoder=str(tiny_bert_dir))
    assert kept_index["pii"] == "keep" and kept_index["pii_found"]["documents"] == 1
    assert any("jane.doe@example.com" in c["text"] for c in load_index(tmp_path / "kept").chunks)
