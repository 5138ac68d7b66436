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
from collections.abc import Iterable, Sequence
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

    def signature(self, hashed: set[int]) -> np.ndarray:
        """(P,) minimum hash per permutation; all-max for an empty set."""
        if not hashed:
            return np.full(self.num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
        x = np.fromiter(hashed, dtype=np.uint64, count=len(hashed))[None, :]  # (1, S), crc32 < 2^32
        return ((self.a * x + self.b) % self.PRIME).min(axis=1)


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


def near_pairs(texts: Sequence[str], *, threshold: float = 0.7, num_perm: int = 128, ngram: int = 3,
               pairs_of: Iterable[tuple[int, int]] | None = None) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, jaccard)`` with i < j whose shingle Jaccard is at least ``threshold``.

    Exact duplicates (same normalised text) are not reported here; see ``exact_clusters``.
    """
    sets = [shingles(t, ngram) for t in texts]
    hasher = MinHasher(num_perm)
    bands, rows = lsh_params(threshold, num_perm)
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        if not s:
            continue
        sig = hasher.signature(s)
        for band in range(bands):
            buckets[(band, sig[band * rows : (band + 1) * rows].tobytes())].append(i)
    candidates: set[tuple[int, int]] = set()
    for members in buckets.values():
        if 1 < len(members) <= 500:  # a giant bucket means boilerplate; those pairs come from other bands
            candidates.update((a, b) for k, a in enumerate(members) for b in members[k + 1 :])
    hashes = [text_hash(t) for t in texts]
    out = []
    for i, j in sorted(candidates):
        if hashes[i] == hashes[j]:
            continue
        sim = jaccard(sets[i], sets[j])
        if sim >= threshold:
            out.append((i, j, sim))
    return out


def duplicate_clusters(texts: Sequence[str], *, threshold: float = 0.7, num_perm: int = 128,
                       ngram: int = 3) -> list[Cluster]:
    """Connected components of exact copies and verified near pairs; ``kind`` is "near" when any
    link in the cluster is a near (not exact) match, with the lowest Jaccard among those links."""
    uf = _UnionFind(len(texts))
    for cluster in exact_clusters(texts):
        for member in cluster.members[1:]:
            uf.union(cluster.members[0], member)
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
