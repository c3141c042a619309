"""Inline SVG charts for the HTML report: a time-series line chart, a heatmap and a verdict strip.

Plain strings, no dependency and no script: each function returns one ``<svg>`` element with a
``<title>`` tooltip on every mark, so the report stays one self-contained file that renders
without network. Text is escaped; numbers are formatted, never evaluated.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["PALETTE", "heatmap", "line_chart", "verdict_strip"]

#: Series colours (colour-blind safe, Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
_W, _H, _L, _R, _T, _B = 860, 280, 64, 170, 16, 40

Point = tuple[dt.datetime, float | None]


def _open(testid: str, width: float, height: float, label: str) -> str:
    return (
        f'<svg class="chart" data-testid="{escape(testid)}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{escape(label)}" '
        'xmlns="http://www.w3.org/2000/svg">'
    )


def _time(t: dt.datetime) -> str:
    return t.strftime("%m-%d %H:%M")


def _num(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def line_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    title: str,
    y_label: str,
    percent: bool = False,
    threshold: float | None = None,
    testid: str = "chart",
) -> str:
    """One line per series over time; gaps (None) break the line. ``percent`` formats the y axis as %."""
    points = [(t, v) for pts in series.values() for t, v in pts if v is not None]
    if not points:
        return f'<p class="empty" data-testid="{escape(testid)}">No data for {escape(title.lower())}.</p>'
    t0 = min(t for t, _ in points)
    t1 = max(t for t, _ in points)
    span = max((t1 - t0).total_seconds(), 1.0)
    top = max([v for _, v in points] + ([threshold] if threshold is not None else []))
    y_hi = top * 1.1 if top > 0 else 1.0
    y_lo = min(0.0, *(v for _, v in points))

    def x(t: dt.datetime) -> float:
        return _L + (t - t0).total_seconds() / span * (_W - _L - _R)

    def y(v: float) -> float:
        return _T + (1 - (v - y_lo) / (y_hi - y_lo)) * (_H - _T - _B)

    fmt = (lambda v: f"{v * 100:.3g}%") if percent else _num
    out = [_open(testid, _W, _H, title)]
    for tick in _ticks(y_lo, y_hi):
        label = f"{tick * 100:.3g}%" if percent else _num(tick)
        out.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
                   f'<text x="{_L - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{label}</text>')  # fmt: skip
    times = sorted({t for t, _ in points})
    for t in times[:: max(1, len(times) // 6)]:
        out.append(f'<text x="{x(t):.1f}" y="{_H - _B + 16}" text-anchor="middle">{_time(t)}</text>')
    mid = _T + (_H - _T - _B) / 2
    out.append(f'<text x="14" y="{mid:.0f}" transform="rotate(-90 14 {mid:.0f})" text-anchor="middle">'
               f"{escape(y_label)}</text>")  # fmt: skip
    if threshold is not None:
        out.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}" class="threshold">'
                   f"<title>threshold {fmt(threshold)}</title></line>")  # fmt: skip
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = PALETTE[i % len(PALETTE)]
        segments: list[list[str]] = [[]]
        for t, v in sorted(pts, key=lambda p: p[0]):
            if v is None:
                segments.append([])
                continue
            segments[-1].append(f"{x(t):.1f},{y(v):.1f}")
            out.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                       f"<title>{escape(name)} {_time(t)}: {fmt(v)}</title></circle>")  # fmt: skip
        for seg in segments:
            if len(seg) > 1:
                out.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        ly = _T + 14 + 18 * i
        out.append(f'<rect x="{_W - _R + 12}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{_W - _R + 30}" y="{ly + 1}">{escape(name[:22])}</text>')  # fmt: skip
    out.append(f'<line x1="{_L}" x2="{_L}" y1="{_T}" y2="{_H - _B}" class="axis"/>'
               f'<line x1="{_L}" x2="{_W - _R}" y1="{_H - _B}" y2="{_H - _B}" class="axis"/></svg>')  # fmt: skip
    return "".join(out)


def _every(cell_width: float, label_width: float = 84.0) -> int:
    """Label every n-th column so that time labels do not overlap."""
    return max(1, math.ceil(label_width / cell_width))


def _heat(ratio: float) -> str:
    """White (0) through yellow (0.5: half the threshold) to red (1 and above: at or past the threshold)."""
    r = max(0.0, min(ratio, 1.0))
    if r < 0.5:
        return f"rgb(255,255,{round(255 - 2 * r * 200)})"
    return f"rgb(255,{round(255 - (r - 0.5) * 2 * 215)},55)"


def heatmap(
    cells: Mapping[tuple[str, dt.datetime], tuple[float | None, float | None, str]],
    *,
    title: str,
    testid: str = "heatmap",
) -> str:
    """Rows (fields) by columns (windows); a cell is ``(value, threshold, verdict)``, coloured by value/threshold."""
    if not cells:
        return f'<p class="empty" data-testid="{escape(testid)}">No data for {escape(title.lower())}.</p>'
    rows = sorted({r for r, _ in cells})
    cols = sorted({c for _, c in cells})
    cw = max(8.0, min(40.0, (_W - 150) / len(cols)))
    ch, left, top = 22, 140, 8
    width, height = left + cw * len(cols) + 10, top + ch * len(rows) + 34
    out = [_open(testid, width, height, title)]
    for i, row in enumerate(rows):
        out.append(f'<text x="{left - 6}" y="{top + ch * i + 15}" text-anchor="end">{escape(row[:20])}</text>')
        for j, col in enumerate(cols):
            value, threshold, verdict = cells.get((row, col), (None, None, "missing"))
            if value is None:
                fill = "#e5e5e5"
            else:
                fill = _heat(value / threshold) if threshold else _heat(min(value, 1.0))
            stroke = ' stroke="#b00" stroke-width="2"' if verdict == "drift" else ""
            shown = (
                "no value" if value is None else f"{value:.3g}" + (f" / threshold {threshold:g}" if threshold else "")
            )
            tip = f"{escape(row)} {_time(col)}: {shown} ({escape(verdict)})"
            out.append(f'<rect x="{left + cw * j:.1f}" y="{top + ch * i}" width="{cw - 1:.1f}" height="{ch - 2}" '
                       f'fill="{fill}"{stroke}><title>{tip}</title></rect>')  # fmt: skip
    for j, col in list(enumerate(cols))[:: _every(cw)]:
        out.append(f'<text x="{left + cw * j:.1f}" y="{top + ch * len(rows) + 16}">{_time(col)}</text>')
    out.append("</svg>")
    return "".join(out)


def verdict_strip(
    rows: Mapping[str, Sequence[tuple[dt.datetime, bool | None, str]]], *, testid: str = "verdicts"
) -> str:
    """One row of cells per schema object: green passed, red failed, grey unknown; ``detail`` is the tooltip."""
    if not rows:
        return f'<p class="empty" data-testid="{escape(testid)}">No window summaries.</p>'
    cols = sorted({t for cells in rows.values() for t, _, _ in cells})
    index = {t: j for j, t in enumerate(cols)}
    cw = max(6.0, min(32.0, (_W - 150) / len(cols)))
    left, ch = 140, 24
    width, height = left + cw * len(cols) + 10, ch * len(rows) + 28
    out = [_open(testid, width, height, "window verdicts")]
    for i, (name, cells) in enumerate(sorted(rows.items())):
        out.append(f'<text x="{left - 6}" y="{ch * i + 16}" text-anchor="end">{escape(name[:20])}</text>')
        for t, passed, detail in cells:
            fill = "#2e9e44" if passed else "#d62728" if passed is False else "#bbbbbb"
            word = "passed" if passed else "failed" if passed is False else "unknown"
            out.append(f'<rect class="verdict-{word}" x="{left + cw * index[t]:.1f}" y="{ch * i + 2}" '
                       f'width="{cw - 1:.1f}" height="{ch - 4}" fill="{fill}"><title>{escape(name)} {_time(t)}: '
                       f"{word}. {escape(detail)}</title></rect>")  # fmt: skip
    for j, t in list(enumerate(cols))[:: _every(cw)]:
        out.append(f'<text x="{left + cw * j:.1f}" y="{ch * len(rows) + 16}">{_time(t)}</text>')
    out.append("</svg>")
    return "".join(out)
