"""Inter-annotator agreement: Cohen's kappa (2 raters), Fleiss' kappa and Krippendorff's alpha (nominal)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import permutations


def cohen_kappa(a: Sequence, b: Sequence) -> float:
    """Cohen's kappa for two raters over the same items: (p_o - p_e) / (1 - p_e)."""
    if len(a) != len(b) or not a:
        raise ValueError("two equally long, non-empty label sequences are needed")
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa from an items x categories table of counts (same number of raters per item)."""
    raters = {sum(row) for row in table}
    if len(raters) != 1 or next(iter(raters)) < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings for every item")
    m, n = next(iter(raters)), len(table)
    p_j = [sum(row[j] for row in table) / (n * m) for j in range(len(table[0]))]
    p_i = [(sum(c * c for c in row) - m) / (m * (m - 1)) for row in table]
    p_bar, p_e = sum(p_i) / n, sum(p * p for p in p_j)
    return 1.0 if p_e == 1 else (p_bar - p_e) / (1 - p_e)


def krippendorff_alpha_nominal(units: Sequence[Sequence]) -> float:
    """Krippendorff's alpha for nominal data; ``units`` holds each item's labels (missing omitted).

    Items with fewer than two labels are not pairable and are ignored, as the method prescribes.
    """
    coincidence: Counter = Counter()
    for labels in units:
        m = len(labels)
        if m < 2:
            continue
        for i, j in permutations(range(m), 2):
            coincidence[(labels[i], labels[j])] += 1 / (m - 1)
    n_c: Counter = Counter()
    for (c, _), v in coincidence.items():
        n_c[c] += v
    n = sum(n_c.values())
    if n <= 1:
        raise ValueError("no pairable ratings")
    observed = sum(v for (c, k), v in coincidence.items() if c != k)
    expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k) / (n - 1)
    return 1.0 if expected == 0 else 1 - observed / expected


def agreement_section(rows: list[dict], columns: list[str]) -> dict | None:
    """Agreement between annotator label columns, with the ids of rows where they disagree."""
    if len(columns) < 2:
        return None
    units = [[r[c] for c in columns if r.get(c) not in (None, "")] for r in rows]
    complete = [r for r, u in zip(rows, units, strict=True) if len(u) == len(columns)]
    disagree = [r["id"] for r, u in zip(rows, units, strict=True) if len(set(map(str, u))) > 1]
    out: dict = {"columns": columns, "items": len(rows), "complete_items": len(complete),
                 "disagreeing_rows": len(disagree), "disagreeing_ids": disagree[:200],
                 "krippendorff_alpha_nominal": round(krippendorff_alpha_nominal(
                     [[str(x) for x in u] for u in units]), 4)}
    if len(columns) == 2 and complete:
        out["cohen_kappa"] = round(cohen_kappa([str(r[columns[0]]) for r in complete],
                                               [str(r[columns[1]]) for r in complete]), 4)
    if len(columns) > 2 and complete:
        cats = sorted({str(r[c]) for r in complete for c in columns})
        table = [[sum(str(r[c]) == cat for c in columns) for cat in cats] for r in complete]
        out["fleiss_kappa"] = round(fleiss_kappa(table), 4)
    return out
