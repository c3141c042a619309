"""What the demo shows: live progress while it runs, and a per-incident summary at the end."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table

from streams.consumers.tracker import EventTracker
from streams.demo.producers import ProducerStats
from streams.demo.scenario import Detection, Incident
from streams.events.types import EventType

__all__ = [
    "DriftWindows",
    "IncidentResult",
    "evaluate",
    "live_view",
    "performance_lines",
    "progress_line",
    "summary",
]


@dataclass(frozen=True, slots=True)
class IncidentResult:
    incident: Incident
    injected: int
    detection: Detection
    latency_s: float | None


@dataclass
class DriftWindows:
    """Every window judged for distribution drift, with the fields that drifted: how many windows *outside*
    the incidents (clean traffic) raised drift, which the summary prints (docs/drift.md, calibration)."""

    #: (contract, schema, window start) -> (start, end, drifted fields, records judged); a replayed event
    #: overwrites its window
    windows: dict[tuple[str, str, str], tuple[dt.datetime, dt.datetime, tuple[str, ...], int]] = field(
        default_factory=dict
    )

    def add(self, event_type: str, data: Mapping[str, Any]) -> None:
        if event_type != EventType.DISTRIBUTION_DRIFT:
            return
        window, contract = data.get("window") or {}, data.get("contract") or {}
        try:
            start = dt.datetime.fromisoformat(str(window["start"]))
            end = dt.datetime.fromisoformat(str(window["end"]))
        except (KeyError, ValueError):
            return
        drifted = tuple(sorted(str(f.get("field")) for f in data.get("fields") or () if f.get("verdict") == "drift"))
        key = (str(contract.get("id")), str(data.get("schema")), str(window["start"]))
        self.windows[key] = (start, end, drifted, int(data.get("records") or 0))

    def clean(self, stats: ProducerStats) -> list[tuple[tuple[str, ...], int]]:
        """The drifted fields and records of each judged window that overlaps no incident's records."""
        spans = [(a, b + dt.timedelta(seconds=1)) for a, b in stats.windows.values()]
        return [
            (drifted, records)
            for start, end, drifted, records in self.windows.values()
            if not any(start < b and end > a for a, b in spans)
        ]

    def line(self, stats: ProducerStats) -> str:
        clean = self.clean(stats)
        every = Counter(f for _, _, drifted, _ in self.windows.values() for f in drifted)
        fields = Counter(f for drifted, _ in clean for f in drifted)
        sizes = ", ".join(str(records) for drifted, records in clean if drifted) or "none"

        def listed(c: Counter[str]) -> str:
            return ", ".join(f"{f} {n}" for f, n in c.most_common()) or "none"

        return (
            f"distribution drift: {len(self.windows)} window(s) judged, drifted fields {listed(every)}; "
            f"{len(clean)} window(s) outside the incidents, {sum(1 for d, _ in clean if d)} of them with a "
            f"drifted field ({listed(fields)}; records judged in those: {sizes})"
        )


def evaluate(incidents: Sequence[Incident], tracker: EventTracker, stats: ProducerStats) -> list[IncidentResult]:
    """Ask each incident's detector whether the quality events show it."""
    out = []
    for i, inc in enumerate(incidents):
        injected = stats.injected.get(i, 0)
        window = stats.windows.get(i)
        if window is None or injected == 0:
            out.append(IncidentResult(inc, 0, Detection(False, "not injected (the run ended first?)"), None))
            continue
        start, end = window
        # a batch that holds the incident's last records is stamped up to a batch-latency later
        det = inc.spec.detect(tracker, start, end + dt.timedelta(seconds=1), injected)
        latency = (det.first_seen - start).total_seconds() if det.first_seen else None
        out.append(IncidentResult(inc, injected, det, latency))
    return out


def _outcomes(tracker: EventTracker) -> Table:
    t = Table(title="records by outcome", box=box.SIMPLE_HEAVY, expand=True)
    for col in ("contract", "valid", "quarantined", "dead-lettered"):
        t.add_column(col, justify="left" if col == "contract" else "right")
    for contract, c in sorted(tracker.outcomes.items()):
        t.add_row(contract.split(":")[-1], f"{c['valid']:,}", f"{c['quarantined']:,}", f"{c['dead_lettered']:,}")
    return t


def _rules(tracker: EventTracker) -> Table:
    t = Table(title="top failing rules", box=box.SIMPLE_HEAVY, expand=True)
    for col in ("rule", "severity", "failing rows"):
        t.add_column(col, justify="right" if col == "failing rows" else "left")
    for (contract, rule, sev), n in tracker.top_rules(6):
        t.add_row(f"{rule} [dim]({contract.split(':')[-1]})[/]", sev, f"{n:,}")
    return t


def _latest(tracker: EventTracker) -> Table:
    t = Table(title="latest quality events", box=box.SIMPLE, expand=True)
    for col in ("window end", "type", "severity", "what"):
        t.add_column(col, overflow="fold")
    for end, kind, _contract, sev, what in list(tracker.latest)[:8]:
        t.add_row(end.strftime("%H:%M:%S"), kind, sev, what[:90])
    return t


def _performance(tracker: EventTracker) -> Table:
    t = Table(title="realized performance (labels joined by prediction id)", box=box.SIMPLE_HEAVY, expand=True)
    for col in ("model version", "windows", "labelled", "accuracy", "unmatched", "orphan labels"):
        t.add_column(col, justify="left" if col == "model version" else "right")
    for version, p in sorted(tracker.performance.items()):
        accuracy = f"{p.accuracy:.1%}" if p.accuracy is not None else "-"
        t.add_row(version or "[dim](no prediction)[/]", str(p.windows), f"{p.labelled:,}", accuracy,
                  f"{p.unmatched:,}", f"{p.orphans:,}")  # fmt: skip
    return t


def performance_lines(tracker: EventTracker) -> list[str]:
    """One plain line per model version of the realized performance (``model.performance`` events): windows
    judged, accuracy over the labelled predictions, unmatched predictions and orphan labels."""
    out = []
    for version, p in sorted(tracker.performance.items()):
        accuracy = f"accuracy {p.accuracy:.1%} of {p.labelled:,} labelled" if p.accuracy is not None else "no label"
        who = f"model {version}" if version else "labels without a prediction (no model version)"
        out.append(f"realized performance, {who}: {p.windows} window(s) judged, {accuracy}, "
                   f"{p.unmatched:,} unmatched, {p.orphans:,} orphan labels")  # fmt: skip
    return out


def _incidents(incidents: Sequence[Incident], elapsed: float, stats: ProducerStats) -> Table:
    t = Table(title="scheduled incidents", box=box.SIMPLE_HEAVY, expand=True)
    for col in ("at", "incident", "state", "injected"):
        t.add_column(col)
    for i, inc in enumerate(incidents):
        state = "[yellow]active[/]" if inc.active(elapsed) else ("done" if elapsed >= inc.end_s else "[dim]upcoming[/]")
        t.add_row(f"{inc.start_s:.0f}s", inc.spec.description[:70], state, str(stats.injected.get(i, 0)))
    return t


def live_view(
    tracker: EventTracker,
    incidents: Sequence[Incident],
    stats: ProducerStats,
    elapsed: float,
    duration: float,
    info: str,
) -> RenderableType:
    head = (
        f"[bold]quality-streams demo[/]  {elapsed:5.0f}s / {duration:.0f}s   sent: features {stats.sent['features']:,}"
        f"  predictions {stats.sent['predictions']:,}  labels {stats.sent['labels']:,}   events {tracker.events:,}"
        f"   {info}"
    )
    parts = [_incidents(incidents, elapsed, stats), _outcomes(tracker), _rules(tracker)]
    if tracker.performance:
        parts.append(_performance(tracker))
    return Panel(
        Group(*parts, _latest(tracker)),
        title=head,
        border_style="cyan",
    )


def progress_line(tracker: EventTracker, stats: ProducerStats, elapsed: float) -> str:
    totals = tracker.totals()
    top = ", ".join(f"{rule}={n}" for (_, rule, _), n in tracker.top_rules(3))
    accuracy = ", ".join(
        f"{v}={p.accuracy:.0%}" for v, p in sorted(tracker.performance.items()) if v and p.accuracy is not None
    )
    return (
        f"[{elapsed:5.0f}s] sent features={stats.sent['features']} predictions={stats.sent['predictions']} "
        f"labels={stats.sent['labels']} | valid={totals['valid']} quarantined={totals['quarantined']} "
        f"dead_lettered={totals['dead_lettered']} | events={tracker.events} | top rules: {top or '-'}"
        + (f" | accuracy: {accuracy}" if accuracy else "")
    )


def summary(
    results: Sequence[IncidentResult],
    tracker: EventTracker,
    console: Console,
    drift: DriftWindows | None = None,
    stats: ProducerStats | None = None,
) -> None:
    totals = tracker.totals()
    console.print()
    console.print("[bold]Summary[/]")
    console.print(
        f"records: valid {totals['valid']:,}, quarantined {totals['quarantined']:,}, "
        f"dead-lettered {totals['dead_lettered']:,}; quality events {tracker.events:,} "
        f"(duplicates ignored: {tracker.duplicates})"
    )
    if tracker.confidence_windows:
        per_version = "; ".join(
            f"model {v}: {n} window(s) judged, {tracker.confidence_alarms[v]} with a confidence alarm"
            for v, n in sorted(tracker.confidence_windows.items())
        )
        console.print(f"prediction confidence: {per_version}", highlight=False, markup=False)
    for line in performance_lines(tracker):
        console.print(line, highlight=False, markup=False)
    if drift is not None and stats is not None and drift.windows:
        console.print(drift.line(stats), highlight=False, markup=False)
    t = Table(box=box.SIMPLE_HEAVY)
    for col in ("incident", "injected", "detected", "time to detect", "evidence"):
        t.add_column(col, overflow="fold")
    for r in results:
        mark = "[green]DETECTED[/]" if r.detection.detected else "[red]MISSED[/]"
        latency = f"{r.latency_s:.1f}s" if r.latency_s is not None else "-"
        t.add_row(r.incident.kind, str(r.injected), mark, latency, r.detection.evidence)
    console.print(t)
    for r in results:
        # one plain line per incident, for logs and CI
        word = "DETECTED" if r.detection.detected else "MISSED"
        console.print(f"incident {r.incident.kind}: {word} - {r.detection.evidence}", highlight=False, markup=False)
