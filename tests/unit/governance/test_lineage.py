"""OpenLineage run events per window summary, through the client's file transport."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.model import Contract
from streams.governance.archive import Archive

from .scenario import RATES, scenario
from .test_archive import NOW, records

pytest.importorskip("openlineage.client", reason="the openlineage extra is not installed")


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def archive(tmp_path: Path, contract: Contract) -> Path:
    with Archive(tmp_path / "archive") as store:
        store.ingest(records(scenario(contract)), now=NOW)
    return tmp_path / "archive"


def test_one_run_event_per_window_with_quality_facets(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "lineage.jsonl"
    args = ["lineage", "--from", str(archive), "--file", str(out), "--bootstrap-servers", "broker-1:9092,broker-2:9092"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "emitted 14 OpenLineage run event(s)" in done.output
    events = read_events(out)
    assert len(events) == 14
    first = events[0]
    assert (first["job"]["namespace"], first["job"]["name"]) == ("qstreams", "urn:test:payments.payments")
    assert "version 1.0.0" in first["job"]["facets"]["documentation"]["description"]
    assert first["run"]["facets"]["nominalTime"]["nominalStartTime"] == "2026-12-01T12:00:00Z"
    uuid.UUID(first["run"]["runId"])
    (dataset,) = first["inputs"]
    assert (dataset["namespace"], dataset["name"]) == ("kafka://broker-1:9092", "shop.payments.v1")
    assertions = dataset["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {a["name"] for a in assertions} == {"amount:maximum", "id:required"}
    metrics = dataset["inputFacets"]["dataQualityMetrics"]
    assert metrics["rowCount"] == 1000 and metrics["columnMetrics"]["id"]["nullCount"] == 0
    # the window verdict: COMPLETE when it passed, FAIL when an error rule failed (the scenario's rates)
    assert [e["eventType"] for e in events] == ["COMPLETE" if r == 0 else "FAIL" for r in RATES]
    worst = next(e for e in events if e["run"]["facets"]["nominalTime"]["nominalStartTime"] == "2026-12-01T12:05:00Z")
    rule = next(a for a in worst["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
                if a["name"] == "amount:maximum")  # fmt: skip
    assert (rule["success"], rule["actual"], rule["column"], rule["severity"]) == (False, "40", "amount", "error")
    # emitted again: the same runs (the run id derives from the window summary's id)
    CliRunner().invoke(app, args)
    again = read_events(out)
    assert len(again) == 28 and [e["run"]["runId"] for e in again[14:]] == [e["run"]["runId"] for e in events]
    assert len({e["run"]["runId"] for e in events}) == 14


def test_without_the_client_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from streams.errors import SettingsError
    from streams.governance.lineage import client_for

    real_import = builtins.__import__

    def no_openlineage(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("openlineage"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openlineage)
    with pytest.raises(SettingsError, match=r"pip install 'quality-streams\[openlineage\]'"):
        client_for("x.jsonl")


def test_the_archiver_observer_emits_each_newly_archived_window_once(
    tmp_path: Path, contract: Contract, caplog: pytest.LogCaptureFixture
) -> None:
    from streams.governance.lineage import lineage_observer

    out = tmp_path / "live.jsonl"
    observe = lineage_observer("localhost:9092", str(out))
    events = records(scenario(contract))
    with Archive(tmp_path / "archive") as store:
        observe(store.ingest(events[:20], now=NOW))  # 5 windows' summaries among the first 20 events
        assert len(read_events(out)) == 5
        observe(store.ingest(events, now=NOW))  # a replay of those, then the rest
    emitted = read_events(out)
    assert len(emitted) == 14 and len({e["run"]["runId"] for e in emitted}) == 14

    class Down:
        def emit(self, event: object) -> None:
            raise ConnectionError("lineage backend unreachable")

    failing = lineage_observer("localhost:9092", client=Down())
    with Archive(tmp_path / "other") as store:
        failing(store.ingest(events, now=NOW))  # logged, not raised: the archive goes on
    assert "Could not emit 14 OpenLineage run event(s): lineage backend unreachable" in caplog.text
