"""Batch-scope events (``batch.summary``, ``rule.violation`` with ``scope: batch``, a batch's ``schema.drift``) carry
the batch's span in ``window``; they are no event-time window and must not be counted as one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from cloudevents.core.v1.event import CloudEvent

from streams.contracts.model import Contract
from streams.events import builders
from streams.governance.archive import Archive, read_archive
from streams.governance.evidence import contract_versions, write_evidence
from streams.governance.report import render_report
from streams.governance.tables import batch_table, window_table
from tests.unit.policies.conftest import CONTRACT

from .scenario import RATES, T0, scenario
from .test_archive import NOW, records


def _batch_events(contract: Contract) -> list[CloudEvent]:
    """One worker batch (without stream time) spanning 12:00:03-12:00:07 with a failing rule."""
    schema_obj = contract.schema("payments")
    frame = pl.DataFrame({"id": ["a", "b", "c"], "amount": [5.0, 2000.0, 3000.0]})
    report = contract.validate(frame, schema_obj.name)
    start, end = T0 + dt.timedelta(seconds=3), T0 + dt.timedelta(seconds=7)
    common = {"source_topic": "shop.payments.v1", "offsets": {0: (100, 102)}, "window_start": start,
              "window_end": end, "worker_id": "w-1"}  # fmt: skip
    summary = builders.batch_summary(
        contract, schema_obj, report, latency_seconds=0.1, counts={"valid": 1, "quarantined": 2}, mode="gate",
        **common,
    )  # fmt: skip
    violations = builders.rule_violations(contract, schema_obj, report, sample_size=5, **common)
    drift = builders.schema_drift(
        contract, schema_obj, unknown_fields={"extra": 3}, missing_fields={}, type_mismatches={}, **common
    )
    assert violations, "the batch must fail a rule"
    return [summary, *violations, drift]


def _archive(tmp_path: Path, contract: Contract) -> tuple[Path, int]:
    batch = _batch_events(contract)
    with Archive(tmp_path / "archive") as archive:
        archive.ingest(records([*scenario(contract), *batch]), now=NOW)
    return tmp_path / "archive", len(batch)


def test_batch_scope_events_are_not_windows(tmp_path: Path, contract: Contract) -> None:
    root, n_batch = _archive(tmp_path, contract)
    events = read_archive(root)
    windows = window_table(events)
    assert windows.height == len(RATES)  # the scenario's 14 one-minute windows, not the batch's span
    assert set(windows["scope"].to_list()) == {"window"}
    assert windows.filter(pl.col("window_start") == T0 + dt.timedelta(seconds=3)).is_empty()
    batches = batch_table(events)
    assert batches.select("scope", "window_start", "window_end", "events", "summaries", "violations").rows() == [
        ("batch", T0 + dt.timedelta(seconds=3), T0 + dt.timedelta(seconds=7), n_batch, 1, n_batch - 2),
    ]
    assert batches.row(0, named=True)["passed"] is False
    assert batches.select("rows", "valid", "quarantined", "dead_lettered").row(0) == (3, 1, 2, 0)


def test_evidence_and_report_keep_batches_apart(tmp_path: Path, contract: Contract) -> None:
    root, _ = _archive(tmp_path, contract)
    path = tmp_path / "c.yaml"
    path.write_text(CONTRACT)
    bundle = write_evidence(contract_versions([path], git_history=False), tmp_path / "out", archive=root)
    assert pl.read_parquet(tmp_path / "out" / "windows.parquet").height == len(RATES)
    batches = pl.read_parquet(tmp_path / "out" / "batches.parquet")
    assert batches["scope"].to_list() == ["batch"]
    assert "batches.parquet" in bundle.files
    assert "Events per batch (not event-time windows)" in bundle.markdown.read_text()
    html = render_report(read_archive(root))
    assert f'<div class="card"><b>{len(RATES)}</b>windows</div>' in html
    assert '<div class="card"><b>1</b>batches (not windows)</div>' in html
