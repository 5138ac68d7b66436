"""The drift page: one offline HTML file with the verdict, the alarms, and per slice a time series of every
check (the current value per window against the reference's, alarms in red)."""

from __future__ import annotations

import time
from pathlib import Path

from ..html_report import esc, line_chart, page, table

ALARM_COLUMNS = ["window", "slice", "check", "n", "reference", "current", "effect", "threshold", "p_adjusted"]


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def _round(row: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}


def drift_page(report: dict, model: str | None = None) -> str:
    windows = [w["start"] for w in report["windows"]]
    alarms = [_round({**a, "window": _day(a["window"])}) for a in report["alarms"]]
    verdict = f'<p class="{"warn" if alarms else "ok"}"><b>{esc(report["summary"])}</b></p>'
    head = (f"<p>{report['items']:,} logged predictions in {len(windows)} windows of {report['window_s'] / 3600:g} "
            f"hours, against {esc(report['reference'])}. Thresholds: {esc(report['thresholds'])}.</p>")
    sections = [("Verdict", verdict + head + table(alarms, ALARM_COLUMNS, limit=50))]
    by_slice: dict[str, dict[str, dict[float, dict]]] = {}
    for c in report["checks"]:
        by_slice.setdefault(c["slice"], {}).setdefault(c["check"], {})[c["window"]] = c
    order = sorted(by_slice, key=lambda s: (s != "all", not any(c["alarm"] for v in by_slice[s].values()
                                                                for c in v.values()), s))
    for name in order:
        charts = []
        for check, per_window in by_slice[name].items():
            points = [(_day(w), _value(per_window.get(w)), bool(per_window.get(w, {}).get("alarm"))) for w in windows]
            reference = next((c["reference"] for c in per_window.values() if c["reference"] is not None), None)
            charts.append(line_chart(points, reference=reference, title=check))
        flagged = sum(c["alarm"] for v in by_slice[name].values() for c in v.values())
        sections.append((f"Slice {name}" + (f" ({flagged} alarms)" if flagged else ""),
                         "<div>" + "".join(charts) + "</div>"))
    return page("Drift report" + (f": {model}" if model else ""), sections,
                "nichetune monitor report: input, prediction and performance drift per window and slice")


def _value(check: dict | None) -> float | None:
    if not check:
        return None
    return check["current"] if check["current"] is not None else check["effect"]


def write_drift_page(out: str | Path, report: dict, model: str | None = None) -> Path:
    from ..atomic import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "drift.html", drift_page(report, model))
    return out / "drift.html"
