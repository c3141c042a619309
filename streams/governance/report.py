"""``qstreams report``: one self-contained HTML file of what the archived quality events say.

Plots (inline SVG, :mod:`streams.governance.svg`): failure rate per rule over time, the verdict of
every window, drift per field as a heatmap, mean confidence per model version; then the incidents
with their owner and action. No network: styles and the few lines of script are inline, and the
script only checks the layout (it marks ``<html data-rendered="N">`` with the number of charts
drawn with a non-empty box, which the browser test reads).
"""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path

import polars as pl

from streams.governance.archive import read_archive
from streams.governance.svg import heatmap, line_chart, verdict_strip
from streams.governance.tables import (
    batch_table,
    confidence_table,
    drift_table,
    incident_table,
    incidents_open_at,
    rule_table,
    window_table,
)

__all__ = ["render_report", "write_report"]

#: Rules plotted at most (those with the highest failure rate first); the others are listed.
MAX_RULES = 8

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#1b1b1b}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#555}.empty{color:#777;font-style:italic}svg.chart{display:block;max-width:100%;height:auto}
svg text{font-size:11px;fill:#333}.grid{stroke:#eee}.axis{stroke:#888}.threshold{stroke:#b00;stroke-dasharray:4 3}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border:1px solid #ddd;padding:4px 6px;text-align:left}
th{background:#f5f5f5}.open{color:#b00;font-weight:600}.resolved{color:#2e7d32}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px}
.card b{display:block;font-size:20px}
"""
_SCRIPT = """
window.addEventListener("load", function () {
  var drawn = 0;
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    if (box.width > 0 && box.height > 0 && svg.querySelectorAll("rect,polyline,circle").length > 0) drawn += 1;
  });
  document.documentElement.setAttribute("data-rendered", String(drawn));
});
"""


def _label(keys: tuple[str | None, ...], several: bool) -> str:
    return "/".join(str(k) for k in keys if k) if several else str(keys[-1])


def _rules_section(rules: pl.DataFrame) -> str:
    keys = ("contract_id", "contract_version", "schema", "rule")
    failing = rules.group_by(keys).agg(pl.col("failure_rate").max().alias("worst"))
    failing = failing.filter(pl.col("worst") > 0).sort("worst", *keys, descending=[True, False, False, False, False])
    several = rules.select(keys[:3]).unique().height > 1
    shown = failing.head(MAX_RULES)
    series = {}
    for contract, version, schema, rule, _ in shown.iter_rows():
        part = rules.filter(
            (pl.col("contract_id") == contract) & pl.col("contract_version").eq_missing(version)
            & (pl.col("schema") == schema) & (pl.col("rule") == rule)
        )  # fmt: skip
        series[_label((contract, version, schema, rule), several)] = list(
            part.select("window_start", "failure_rate").iter_rows()
        )
    note = ""
    if failing.height > MAX_RULES:
        note = f"<p class='meta'>{failing.height - MAX_RULES} more failing rule(s) not plotted.</p>"
    passing = rules.select("rule").unique().height - failing.select("rule").unique().height
    if passing > 0:
        note += f"<p class='meta'>{passing} rule(s) never failed in the period.</p>"
    chart = line_chart(series, title="Failure rate per rule", y_label="failing records", percent=True,
                       testid="failure-rate")  # fmt: skip
    return chart + note


def _verdicts_section(windows: pl.DataFrame) -> str:
    several = windows.select("contract_id", "contract_version").unique().height > 1
    rows: dict[str, list[tuple[dt.datetime, bool | None, str]]] = {}
    for r in windows.iter_rows(named=True):
        detail = f"{r['records'] or 0} records, {r['quarantined'] or 0} quarantined"
        rows.setdefault(_label((r["contract_id"], r["contract_version"], r["schema"]), several), []).append(
            (r["window_start"], r["passed"], detail)
        )
    return verdict_strip(rows, testid="window-verdicts")


def _drift_section(drift: pl.DataFrame) -> str:
    several = drift.select("contract_id", "contract_version", "schema").unique().height > 1
    cells = {
        (_label((r["contract_id"], r["contract_version"], r["schema"], r["field"]), several), r["window_start"]): (
            r["value"], r["threshold"], r["verdict"] or "unknown")
        for r in drift.iter_rows(named=True)
    }  # fmt: skip
    return heatmap(cells, title="Drift per field", testid="drift-heatmap")


def _confidence_section(confidence: pl.DataFrame) -> str:
    series: dict[str, list[tuple[dt.datetime, float | None]]] = {}
    several = confidence.select("contract_id", "contract_version").unique().height > 1
    for r in confidence.iter_rows(named=True):
        keys = (r["contract_id"], r["contract_version"], r["model_version"])
        series.setdefault(_label(keys, several) if several else str(r["model_version"]), []).append(
            (r["window_start"], r["mean_confidence"])
        )
    return line_chart(series, title="Mean confidence per model version", y_label="mean confidence",
                      testid="confidence")  # fmt: skip


def _incidents_section(incidents: pl.DataFrame) -> str:
    if incidents.is_empty():
        return '<p class="empty" data-testid="incidents">No incident in the period.</p>'
    head = ("opened", "policy", "severity", "action", "owner", "channel", "status", "resolved", "incident")
    rows = []
    for r in incidents.iter_rows(named=True):
        owner = r["owners"] or r["owner_team"] or "–"
        action = (r["action"] or "–") + (f" ({r['model_version']})" if r["model_version"] else "")
        resolved = f"{r['resolved_at']:%Y-%m-%d %H:%M} ({r['resolved_how']})" if r["resolved_at"] else "–"
        cells = (f"{r['opened_at']:%Y-%m-%d %H:%M}", r["policy"], r["severity"], action, owner,
                 r["support_channel"] or "–", r["status"], resolved, r["incident_id"][:12])  # fmt: skip
        tds = "".join(f'<td class="{escape(str(c))}">{escape(str(c))}</td>' if i == 6 else f"<td>{escape(str(c))}</td>"
                      for i, c in enumerate(cells))  # fmt: skip
        rows.append(f"<tr>{tds}</tr>")
    header = "".join(f"<th>{h}</th>" for h in head)
    return f'<table data-testid="incidents"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render_report(
    events: pl.DataFrame, *, title: str = "Data quality report", source: str = "", earlier: pl.DataFrame | None = None
) -> str:
    """The report of archived ``events`` (the frame :func:`~streams.governance.archive.read_archive` gives);
    ``earlier``: the events before the period of the incidents open when it began
    (:func:`~streams.governance.tables.incidents_open_at`)."""
    windows, rules, drift = window_table(events), rule_table(events), drift_table(events)
    confidence, incidents = confidence_table(events), incident_table(events, earlier)
    period = "no events"
    if not events.is_empty():
        first, last = events["time"].min(), events["time"].max()
        assert isinstance(first, dt.datetime) and isinstance(last, dt.datetime)
        period = f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M} UTC"
    contracts = ", ".join(sorted({str(c) for c in events["contract_id"].drop_nulls().unique()})) or "–"
    failed = windows.filter(pl.col("passed") == False).height  # noqa: E712 - a polars expression
    open_incidents = incidents.filter(pl.col("status") == "open").height
    cards: tuple[tuple[str, int], ...] = (
        ("events", events.height), ("windows", windows.height), ("failed windows", failed),
        ("incidents", incidents.height), ("open incidents", open_incidents),
    )  # fmt: skip
    batches = batch_table(events).height  # batch-scope events (no stream time): no window, counted apart
    if batches:
        cards += (("batches (not windows)", batches),)
    card_html = "".join(f'<div class="card"><b>{v}</b>{escape(k)}</div>' for k, v in cards)
    sections = [
        ("Failure rate per rule", _rules_section(rules)),
        ("Window verdicts", _verdicts_section(windows)),
        ("Drift per field (value / threshold; outlined: drift)", _drift_section(drift)),
        ("Mean confidence per model version", _confidence_section(confidence)),
        ("Incidents", _incidents_section(incidents)),
    ]
    body = "".join(f"<h2>{escape(h)}</h2>{html}" for h, html in sections)
    generated = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class='meta'>Contracts: {escape(contracts)} · {escape(period)}"
        f"{' · ' + escape(source) if source else ''} · generated {generated} by qstreams report</p>"
        f'<div class="cards">{card_html}</div>{body}<script>{_SCRIPT}</script></body></html>'
    )


def write_report(
    archive: Path, out: Path, *, since: dt.datetime | None = None, contract: str | None = None
) -> pl.DataFrame:
    """Write the report of the archive at ``archive`` to ``out``; the events it shows."""
    events = read_archive(archive, since=since, contract=contract)
    earlier = None if since is None else incidents_open_at(archive, since, contract)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(events, source=f"archive {archive}", earlier=earlier), encoding="utf-8")
    return events
