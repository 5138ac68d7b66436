"""Exact and near-duplicate detection: normalised hashes, MinHash signatures and LSH banding.

Near-duplicate candidates from LSH are verified with the exact Jaccard similarity of their
shingle sets, so reported pairs are never LSH false positives.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


def normalise_text(text: str) -> str:
    """Case-fold, strip accents' compatibility forms, drop punctuation, collapse whitespace."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(text))


def text_hash(text: str) -> str:
    return hashlib.sha1(normalise_text(text).encode()).hexdigest()


def shingles(text: str, n: int = 3) -> set[int]:
    """Hashed word n-grams (whole text when shorter than ``n`` words)."""
    words = normalise_text(text).split()
    if len(words) < n:
        return {zlib.crc32(" ".join(words).encode())} if words else set()
    return {zlib.crc32(" ".join(words[i : i + n]).encode()) for i in range(len(words) - n + 1)}


def jaccard(a: set[int], b: set[int]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def detection_probability(jaccard_value: float, bands: int, rows: int) -> float:
    """Chance that a pair with this Jaccard similarity shares at least one LSH band."""
    return 1 - (1 - jaccard_value**rows) ** bands


def lsh_params(threshold: float, num_perm: int, recall: float = 0.98) -> tuple[int, int]:
    """Bands and rows: the most rows per band (fewest candidates) that still find a pair *at*
    ``threshold`` with probability ``recall``. Candidates are verified exactly afterwards, so
    erring towards recall costs time, never correctness."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if detection_probability(threshold, bands, rows) >= recall:
            return bands, rows
    return num_perm, 1


class MinHasher:
    """MinHash signatures from ``num_perm`` universal hashes h(x) = (a*x + b) mod p.

    With a, b, x < 2^32 and the prime p = 2^32 + 15, a*x + b < 2^64: exact in uint64.
    """

    PRIME = np.uint64(4294967311)

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.a = rng.integers(1, 1 << 32, size=num_perm, dtype=np.uint64)[:, None]  # (P, 1)
        self.b = rng.integers(0, 1 << 32, size=num_perm, dtype=np.uint64)[:, None]

    def signature(self, hashed: set[int] | np.ndarray) -> np.ndarray:
        """(P,) minimum hash per permutation (folded into uint32); all-max for an empty set."""
        x = hashed if isinstance(hashed, np.ndarray) else np.fromiter(hashed, dtype=np.uint32, count=len(hashed))
        if not len(x):
            return np.full(self.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        mins = ((self.a * x.astype(np.uint64)[None, :] + self.b) % self.PRIME).min(axis=1)
        return (mins & np.uint64(0xFFFFFFFF)).astype(np.uint32)  # p - 2^32 = 15 values fold: negligible


@dataclass
class Cluster:
    """Rows that are exact or near copies of each other (indices into the input order)."""

    members: list[int]
    kind: str  # "exact" or "near"
    min_jaccard: float = 1.0


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def exact_clusters(texts: Sequence[str]) -> list[Cluster]:
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(texts):
        by_hash[text_hash(text)].append(i)
    return [Cluster(m, "exact") for m in by_hash.values() if len(m) > 1]


def shingle_array(text: str, n: int = 3) -> np.ndarray:
    """Sorted unique shingle hashes as uint32: a tenth of the memory of a Python set."""
    return np.unique(np.fromiter(shingles(text, n), dtype=np.uint32))


def _array_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if not len(a) and not len(b):
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def _band_candidates(block: np.ndarray, max_bucket: int) -> set[tuple[int, int]]:
    """Pairs of rows whose (N, rows) band values are identical, found with one vectorised sort."""
    keys = np.ascontiguousarray(block).view(np.dtype((np.void, block.dtype.itemsize * block.shape[1]))).ravel()
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out: set[tuple[int, int]] = set()
    for start, count in zip(starts[counts > 1], counts[counts > 1], strict=True):
        if count <= max_bucket:  # a giant bucket means boilerplate; its pairs surface in other bands
            members = order[start : start + count].tolist()
            out.update((a, b) for k, a in enumerate(members) for b in members[k + 1 :])
    return out


def near_pairs(texts: Sequence[str], *, threshold: float = 0.7, num_perm: int = 128, ngram: int = 3,
               max_bucket: int = 500) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, jaccard)`` with i < j whose shingle Jaccard is at least ``threshold``.

    Memory stays proportional to the corpus: uint32 shingle arrays, an (N, num_perm) uint32
    signature matrix, and one band's buckets at a time. Exact duplicates (same normalised
    text) are not reported here; see ``exact_clusters``.
    """
    arrays = [shingle_array(t, ngram) for t in texts]
    hasher = MinHasher(num_perm)
    signatures = np.empty((len(texts), num_perm), dtype=np.uint32)
    for i, arr in enumerate(arrays):
        signatures[i] = hasher.signature(arr)
    empty = np.array([not len(a) for a in arrays])
    bands, rows = lsh_params(threshold, num_perm)
    candidates: set[tuple[int, int]] = set()
    for band in range(bands):
        candidates |= _band_candidates(signatures[:, band * rows : (band + 1) * rows], max_bucket)
    hashes = [text_hash(t) for t in texts]
    out = []
    for i, j in sorted(candidates):
        if empty[i] or empty[j] or hashes[i] == hashes[j]:
            continue
        sim = _array_jaccard(arrays[i], arrays[j])
        if sim >= threshold:
            out.append((i, j, sim))
    return out


def duplicate_clusters(texts: Sequence[str], *, threshold: float = 0.7, num_perm: int = 128,
                       ngram: int = 3, pairs: list[tuple[int, int, float]] | None = None) -> list[Cluster]:
    """Connected components of exact copies and verified near pairs; ``kind`` is "near" when any
    link in the cluster is a near (not exact) match, with the lowest Jaccard among those links."""
    uf = _UnionFind(len(texts))
    for cluster in exact_clusters(texts):
        for member in cluster.members[1:]:
            uf.union(cluster.members[0], member)
    if pairs is None:
        pairs = near_pairs(texts, threshold=threshold, num_perm=num_perm, ngram=ngram)
    for i, j, _ in pairs:
        uf.union(i, j)
    lowest: dict[int, float] = {}
    for i, _, sim in pairs:
        root = uf.find(i)
        lowest[root] = min(lowest.get(root, 1.0), sim)
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(texts)):
        members[uf.find(i)].append(i)
    return [Cluster(m, "near" if root in lowest else "exact", round(lowest.get(root, 1.0), 4))
            for root, m in members.items() if len(m) > 1]
