"""Self-contained HTML pages: escaped tables, inline SVG bar charts, no external assets."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#1b1b1b;
padding:0 1rem}h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:14px}td,th{border:1px solid #ddd;padding:.25rem .55rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#fff4e5;border-left:4px solid #f59e0b;padding:.4rem .8rem;margin:.3rem 0}
.ok{background:#ecfdf3;border-left:4px solid #16a34a;padding:.4rem .8rem}.muted{color:#666;font-size:13px}
code{background:#f4f4f4;padding:0 .2rem}
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def table(rows: Sequence[dict], columns: Sequence[str], limit: int | None = None) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    shown = rows[:limit] if limit else rows
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{esc(r.get(c, ""))}</td>' if isinstance(r.get(c), int | float) else
            f"<td>{esc(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in shown)
    hidden = len(rows) - len(shown)
    more = f'<p class="muted">{hidden} more not shown (see the JSON)</p>' if hidden else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def bar_chart(items: Iterable[tuple[str, float]], *, width: int = 520, bar: int = 18, title: str = "") -> str:
    items = list(items)
    if not items:
        return ""
    top = max(v for _, v in items) or 1
    label_w = 170
    height = len(items) * (bar + 4) + 24
    parts = [f'<svg role="img" aria-label="{esc(title)}" width="{width + label_w + 60}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>']
    for i, (label, value) in enumerate(items):
        y = 4 + i * (bar + 4)
        w = max(1, int(width * value / top))
        parts.append(f'<text x="{label_w - 6}" y="{y + bar - 5}" text-anchor="end" font-size="12">{esc(label)[:28]}'
                     f'</text><rect x="{label_w}" y="{y}" width="{w}" height="{bar}" fill="#3b82f6"/>'
                     f'<text x="{label_w + w + 4}" y="{y + bar - 5}" font-size="12">{esc(_fmt(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(points: Sequence[tuple[str, float | None, bool]], *, reference: float | None = None,
               width: int = 420, height: int = 110, title: str = "") -> str:
    """A small SVG time series: ``(x label, value, alarm)`` per point (alarms in red), and a dashed reference
    line. Points without a value are skipped."""
    shown = [(i, v, a) for i, (_, v, a) in enumerate(points) if v is not None]
    if not shown:
        return ""
    values = [v for _, v, _ in shown] + ([reference] if reference is not None else [])
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    pad, n = 24, max(len(points) - 1, 1)

    def x(i):
        return pad + (width - 2 * pad) * i / n

    def y(v):
        return height - pad - (height - 2 * pad) * (v - low) / span

    parts = [f'<svg role="img" aria-label="{esc(title)}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{esc(title)}</title>'
             f'<text x="4" y="12" font-size="11">{esc(title)}</text>']
    if reference is not None:
        parts.append(f'<line x1="{pad}" x2="{width - pad}" y1="{y(reference):.1f}" y2="{y(reference):.1f}" '
                     f'stroke="#888" stroke-dasharray="4 3"/>')
    parts.append('<polyline fill="none" stroke="#3b82f6" stroke-width="1.5" points="'
                 + " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v, _ in shown) + '"/>')
    for i, v, alarm in shown:
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="{4 if alarm else 2.5}" '
                     f'fill="{"#dc2626" if alarm else "#3b82f6"}"><title>{esc(points[i][0])}: {_fmt(v)}'
                     f'{" (alarm)" if alarm else ""}</title></circle>')
    parts.append(f'<text x="{pad}" y="{height - 6}" font-size="10">{esc(points[0][0])}</text>'
                 f'<text x="{width - pad}" y="{height - 6}" font-size="10" text-anchor="end">'
                 f'{esc(points[-1][0])}</text></svg>')
    return "".join(parts)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.3g}"


def warnings(items: Sequence[str]) -> str:
    if not items:
        return '<p class="ok">No problems found.</p>'
    return "".join(f'<div class="warn">{esc(w)}</div>' for w in items)


def page(title: str, sections: Iterable[tuple[str, str]], subtitle: str = "") -> str:
    body = "".join(f'<h2 id="{esc(h.lower().replace(" ", "-"))}">{esc(h)}</h2>{content}' for h, content in sections)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>'
            f'<body><h1>{esc(title)}</h1><p class="muted">{esc(subtitle)}</p>{body}</body></html>')
