"""An index folder, built once and sealed like a run: the chunks (with source, offsets and sha256), a BM25 index
(``bm25s``, saved without pickle) and unit-length dense vectors (safetensors), with a manifest of every file.

``build_index`` writes it under a temporary name and renames it when complete; ``load_index`` checks it and
searches it: BM25, exact dense (cosine) search, or both fused by reciprocal rank (the default).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_dir
from ..errors import NichetuneError
from ..hashing import MANIFEST_NAME, read_manifest, verify_manifest, write_manifest
from ..stats.ranking import reciprocal_rank_fusion
from .chunking import chunk_text
from .documents import read_documents, screen_documents

KIND = "nichetune-index"
SCHEMA_VERSION = 1
CHUNKS, VECTORS, BM25, QUARANTINE = "chunks.jsonl", "vectors.safetensors", "bm25", "quarantine.jsonl"
FAISS = "vectors.faiss"
MODES = ("hybrid", "bm25", "dense")
SEARCHES = ("exact", "faiss")  # dense search: exact cosine (numpy), or a faiss HNSW graph for large corpora
HNSW_M, HNSW_EF_BUILD, HNSW_EF_SEARCH = 32, 200, 256  # faiss HNSW: links per node, build and search beam widths


@dataclass(frozen=True)
class Hit:
    chunk: dict
    score: float
    ranks: dict  # the chunk's rank in each list that was fused (1 = best), None where it was not retrieved


def _tokens(texts: list[str]):
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", show_progress=False)


class Encoder:
    """Mean-pooled, L2-normalised sentence vectors from an encoder (an embedded name or a model folder)."""

    def __init__(self, reference: str):
        from ..run.paths import RunPaths

        if RunPaths(reference).manifest.is_file():  # a tuned classifier run: its encoder, adapter applied
            from ..infer.loading import load_sequence_classifier

            self.model, self.tokenizer = load_sequence_classifier(reference, device="cpu")
        else:
            from ..models.loading import load_encoder

            self.model, self.tokenizer = load_encoder(reference, device="cpu")
        self.reference = reference

    def __call__(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        from ..infer.classify import sentence_vectors

        return sentence_vectors(self.model, self.tokenizer, texts, max_length=256, batch_size=batch_size)[0]


def _chunks(documents, settings: dict) -> list[dict]:
    """Chunks of ``documents``; a chunk's id (document sha256 prefix and offset) stays the same across updates."""
    return [{"id": f"{doc.sha256[:12]}-{span.start}", "doc": doc.id, "source": doc.source,
             "doc_sha256": doc.sha256, "start": span.start, "end": span.end, "heading": span.heading,
             "text": doc.text[span.start:span.end]}
            for doc in documents for span in chunk_text(doc.text, max_chars=settings["max_chars"],
                                                        overlap=settings["overlap"])]


def _write(out: Path, chunks: list[dict], vectors: np.ndarray, documents: list[dict], bad: list[dict],
           settings: dict) -> dict:
    """Write the index folder atomically (replacing an index already there) and return its manifest."""
    import bm25s
    from safetensors.numpy import save_file

    retriever = bm25s.BM25()
    retriever.index(_tokens([c["text"] for c in chunks]), show_progress=False)
    with atomic_dir(out) as tmp:
        (tmp / CHUNKS).write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chunks), encoding="utf-8")
        (tmp / QUARANTINE).write_text("".join(json.dumps(b) + "\n" for b in bad), encoding="utf-8")
        save_file({"vectors": vectors.astype(np.float32)}, str(tmp / VECTORS))
        if settings.get("dense_search") == "faiss":
            _write_faiss(tmp / FAISS, vectors)
        retriever.save(str(tmp / BM25))
        manifest = write_manifest(tmp, {"kind": KIND, "schema_version": SCHEMA_VERSION, **settings,
                                        "chunks": len(chunks), "quarantined": len(bad),
                                        "pii_found": _pii_found(documents), "documents": documents})
    return manifest


def _faiss():
    try:
        import faiss
    except ImportError as exc:
        raise NichetuneError("dense search by faiss needs the faiss-cpu package",
                             hint='pip install -e ".[faiss]", or build with --dense-search exact') from exc
    return faiss


def _write_faiss(path: Path, vectors: np.ndarray) -> None:
    """An HNSW graph over the unit vectors by inner product (= cosine), in faiss's own format (no pickle)."""
    faiss = _faiss()
    graph = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = HNSW_EF_BUILD
    graph.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(graph, str(path))


def _documents(docs, pii: dict) -> list[dict]:
    """The manifest's entry per document, with the PII types found in it (masked or kept, per the index's rule)."""
    return [{"id": d.id, "source": d.source, "sha256": d.sha256,
             **({"pii": pii["per_document"][d.id]} if d.id in pii["per_document"] else {})} for d in docs]


def _pii_found(documents: list[dict]) -> dict:
    types: dict[str, int] = {}
    for d in documents:
        for t, n in d.get("pii", {}).items():
            types[t] = types.get(t, 0) + n
    return {"documents": sum(1 for d in documents if d.get("pii")), "by_type": dict(sorted(types.items()))}


def build_index(docs: list[str | Path], out: str | Path, *, encoder: str = "minilm-l6", max_chars: int = 800,
                overlap: int = 120, dense_search: str = "exact", pii: str = "keep") -> dict:
    """Read ``docs``, chunk them, index the chunks into ``out``; return the manifest.

    ``pii``: ``keep`` (counted in the manifest), ``mask`` (replaced by ``[TYPE]`` before indexing) or
    ``quarantine`` (documents holding PII are not indexed).

    Raises:
        NichetuneError: ``out`` exists, or no document could be read.
    """
    out = Path(out)
    if out.exists():
        raise NichetuneError(f"{out} already exists; nothing was changed",
                             hint="choose another --out, or add to it with `nichetune index update`")
    documents, bad = read_documents(docs)
    documents, refused, found = screen_documents(documents, pii)
    bad += refused
    if not documents:
        raise NichetuneError(f"no document could be read from {', '.join(map(str, docs))}",
                             hint="give .txt, .md, .html, .pdf or .jsonl files (with a 'text' field)")
    if dense_search not in SEARCHES:
        raise NichetuneError(f"unknown dense search {dense_search!r}", hint=f"use one of {', '.join(SEARCHES)}")
    if dense_search == "faiss":
        _faiss()  # before hours of encoding, not after
    settings = {"encoder": encoder, "max_chars": max_chars, "overlap": overlap, "dense_search": dense_search,
                "pii": pii}
    chunks = _chunks(documents, settings)
    return _write(out, chunks, Encoder(encoder)([c["text"] for c in chunks]), _documents(documents, found), bad,
                  settings)


def update_index(folder: str | Path, add: list[str | Path] = (), remove: list[str] = ()) -> dict:
    """Add documents to an index and remove others (by id) without re-encoding what stays.

    A document added again with the same id and text is left as it is; with changed text it is replaced.
    Returns the new manifest, with ``added``, ``replaced``, ``removed`` and ``unchanged`` document ids.

    Raises:
        NichetuneError: not an index, a removed id that is not in it, or nothing to do.
    """
    index = load_index(folder)
    settings = {k: index.manifest[k] for k in ("encoder", "max_chars", "overlap")} | {
        "dense_search": index.manifest.get("dense_search", "exact"), "pii": index.manifest.get("pii", "keep")}
    known = {d["id"]: d for d in index.manifest["documents"]}
    missing = sorted(set(remove) - set(known))
    if missing:
        raise NichetuneError(f"{folder} has no document {missing[0]!r}", hint="see the ids in its manifest")
    new, bad = read_documents(list(add)) if add else ([], [])
    new, refused, found = screen_documents(new, settings["pii"])
    bad += refused
    unchanged = [d.id for d in new if d.id in known and known[d.id]["sha256"] == d.sha256]
    fresh = [d for d in new if d.id not in unchanged]
    replaced = [d.id for d in fresh if d.id in known]
    gone = set(remove) | set(replaced)
    keep = [i for i, c in enumerate(index.chunks) if c["doc"] not in gone]
    new_chunks = _chunks(fresh, settings)
    vectors = index.vectors[keep]
    if new_chunks:
        vectors = np.concatenate([vectors, Encoder(settings["encoder"])([c["text"] for c in new_chunks])])
    chunks = [index.chunks[i] for i in keep] + new_chunks
    if not chunks:
        raise NichetuneError(f"removing {', '.join(sorted(gone))} would leave {folder} empty",
                             hint="keep at least one document, or delete the folder")
    documents = [d for d in index.manifest["documents"] if d["id"] not in gone] + _documents(fresh, found)
    quarantine = [json.loads(line) for line in (index.folder / QUARANTINE).open(encoding="utf-8")] + bad
    manifest = _write(index.folder, chunks, vectors, documents, quarantine, settings)
    return {**manifest, "added": [d.id for d in fresh if d.id not in replaced], "replaced": replaced,
            "removed": sorted(set(remove)), "unchanged": unchanged}


class Index:
    """A built index, checked against its manifest, ready to search."""

    def __init__(self, folder: str | Path):
        import bm25s
        from safetensors.numpy import load_file

        self.folder = Path(folder)
        manifest = read_manifest(self.folder)
        if not manifest or manifest.get("kind") != KIND:
            raise NichetuneError(f"{self.folder} is not a nichetune index (no {MANIFEST_NAME} of kind {KIND})",
                                 hint="build one with `nichetune index build DOCS... --out DIR`")
        problems = verify_manifest(self.folder, deep=False)
        if problems:
            raise NichetuneError(f"{self.folder} does not match its manifest: {'; '.join(problems[:3])}",
                                 hint="the index was changed after it was built; build it again")
        self.manifest = manifest
        self.chunks = [json.loads(line) for line in (self.folder / CHUNKS).open(encoding="utf-8")]
        self.vectors = load_file(str(self.folder / VECTORS))["vectors"]
        self.bm25 = bm25s.BM25.load(str(self.folder / BM25))
        self.graph = None
        if manifest.get("dense_search") == "faiss":
            self.graph = _faiss().read_index(str(self.folder / FAISS))
            self.graph.hnsw.efSearch = HNSW_EF_SEARCH
        self._encoder: Encoder | None = None

    def _ranked_bm25(self, query: str, n: int) -> list[int]:
        ids, scores = self.bm25.retrieve(_tokens([query]), k=min(n, len(self.chunks)), show_progress=False)
        return [int(i) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]

    def _ranked_dense(self, query: str, n: int) -> tuple[list[int], np.ndarray]:
        if self._encoder is None:
            self._encoder = Encoder(self.manifest["encoder"])
        q = self._encoder([query])[0]
        if self.graph is not None:  # approximate: the graph's n nearest, scored exactly
            _, found = self.graph.search(q[None, :].astype(np.float32), min(n, len(self.chunks)))
            order = [int(i) for i in found[0] if i >= 0]
            sims = np.full(len(self.chunks), -np.inf, dtype=np.float32)
            sims[order] = self.vectors[order] @ q
            return sorted(order, key=lambda i: -sims[i]), sims
        sims = self.vectors @ q  # (N,) cosine: both sides are unit length
        order = np.argsort(-sims, kind="stable")[:n]
        return [int(i) for i in order], sims

    def search(self, query: str, k: int = 5, mode: str = "hybrid", pool: int = 50, reranker=None,
               rerank_pool: int = 20) -> list[Hit]:
        """The ``k`` best chunks for ``query``; ``hybrid`` fuses the top ``pool`` of BM25 and dense by RRF.

        With a ``reranker`` (``rerank.load_reranker``), the best ``rerank_pool`` candidates are scored again as
        (question, chunk) pairs and the ``k`` best of that order are returned (``ranks["rerank"]``)."""
        if mode not in MODES:
            raise NichetuneError(f"unknown search mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
        lists: dict[str, list[int]] = {}
        if mode in ("hybrid", "bm25"):
            lists["bm25"] = self._ranked_bm25(query, pool if mode == "hybrid" else k)
        if mode in ("hybrid", "dense"):
            lists["dense"], sims = self._ranked_dense(query, pool if mode == "hybrid" else k)
        fused = reciprocal_rank_fusion(list(lists.values())) if mode == "hybrid" else [
            (i, float(sims[i]) if mode == "dense" else 0.0) for i in lists[mode]]
        if reranker is not None:
            candidates = [position for position, _ in fused[:max(k, rerank_pool)]]
            scores = reranker.scores(query, [self.chunks[i]["text"] for i in candidates])
            order = np.argsort(-np.asarray(scores), kind="stable")
            fused = [(candidates[i], float(scores[i])) for i in order]
            lists["rerank"] = [position for position, _ in fused]
        hits = []
        for position, score in fused[:k]:
            ranks = {name: (ranked.index(position) + 1 if position in ranked else None)
                     for name, ranked in lists.items()}
            hits.append(Hit(self.chunks[position], score, ranks))
        return hits


def load_index(folder: str | Path) -> Index:
    """An index folder, verified (sizes against its manifest).

    Raises:
        NichetuneError: not an index, or changed since it was built.
    """
    return Index(folder)
