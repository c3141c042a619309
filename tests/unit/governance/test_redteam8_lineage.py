"""Red team 8: the OpenLineage run events of the archived windows, checked against the OpenLineage 2-0-2 spec
(``OpenLineage.json`` RunEvent, BaseFacet and the DataQualityAssertions / DataQualityMetrics / NominalTime /
Documentation facets) by a checker written here, and their state recomputed from the archived checks.

Before: one archived ``window.summary`` whose data is not one (another producer's, a broken one) stopped
``qstreams lineage`` with a KeyError/TypeError traceback, and in ``qstreams archive --openlineage`` lost the run
events of every other window of its batch; ``rowCount`` counted the dead letters no check evaluated (not the
facet's "number of rows evaluated", and not its own columns' ``count``); the facets named the OpenLineage client,
not quality-streams, as their ``_producer``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from cloudevents.core.v1.event import CloudEvent
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.model import Contract
from streams.governance.archive import Archive, read_archive
from streams.governance.lineage import PRODUCER, emit_window_summaries, window_run_event

from .scenario import T0, scenario
from .test_archive import NOW, records

pytest.importorskip("openlineage.client", reason="the openlineage extra is not installed")

SUMMARY = "io.qualitystreams.window.summary.v1"
OURS = ("nominalTime", "documentation", "dataQualityAssertions", "dataQualityMetrics")
BAD: dict[str, Any] = {
    "no window": {"contract": {"id": "urn:test:payments"}, "schema": "payments", "topic": "t"},
    "no contract": {"schema": "payments", "topic": "t", "window": {"start": "2026-12-01T12:00:00Z", "end": "x"}},
    "a window of words": {"contract": {"id": "urn:test:payments"}, "schema": "payments", "topic": "t",
                          "window": {"start": "yesterday", "end": "today"}},
    "a list": [1, 2],
    "a contract id of a number": {"contract": {"id": 7}, "schema": "payments", "topic": "t",
                                  "window": {"start": "2026-12-01T12:00:00Z", "end": "2026-12-01T12:01:00Z"}},
}  # fmt: skip


def _uri(value: Any) -> bool:
    return isinstance(value, str) and bool(urlparse(value).scheme) and bool(urlparse(value).netloc)


def _time(value: Any) -> bool:
    try:
        return isinstance(value, str) and dt.datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def spec_problems(e: dict[str, Any]) -> list[str]:
    """What the OpenLineage 2-0-2 JSON Schema would refuse in one run event (the parts this producer emits)."""
    out = [f"missing {k}" for k in ("run", "job", "eventTime", "producer", "schemaURL") if k not in e]
    out += [] if e.get("eventType") in ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER") else ["eventType"]
    out += [] if _time(e.get("eventTime")) else ["eventTime is no date-time"]
    out += [] if _uri(e.get("producer")) and _uri(e.get("schemaURL")) else ["producer/schemaURL is no uri"]
    try:
        uuid.UUID(e["run"]["runId"])
    except (KeyError, ValueError, TypeError):
        out.append("runId is no uuid")
    facets = [*e["run"].get("facets", {}).items(), *e["job"].get("facets", {}).items()]
    for d in e.get("inputs", []):
        out += [] if isinstance(d.get("namespace"), str) and isinstance(d.get("name"), str) else ["dataset name"]
        facets += d.get("inputFacets", {}).items()
    for name, f in facets:
        out += [] if _uri(f.get("_producer")) and _uri(f.get("_schemaURL")) else ["facet _producer/_schemaURL"]
        if name in OURS:  # the client adds its own (`tags`: its version), rightly naming itself
            out += [] if f.get("_producer") == PRODUCER else [f"facet {name} _producer {f.get('_producer')}"]
        for a in f.get("assertions", []):
            out += [] if isinstance(a.get("assertion"), str) and isinstance(a.get("success"), bool) else ["assertion"]
            out += [f"assertion {k}" for k in ("column", "expected", "actual", "severity", "name")
                    if k in a and not isinstance(a[k], str)]  # fmt: skip
        if "rowCount" in f and not _int(f["rowCount"]):
            out.append("rowCount is no integer")
        for m in f.get("columnMetrics", {}).values():
            out += [] if _int(m.get("nullCount", 0)) else ["nullCount is no integer"]
        for k in ("nominalStartTime", "nominalEndTime"):
            out += [] if k not in f or _time(f[k]) else [f"{k} is no date-time"]
    return out


def _bad(contract: Contract) -> list[CloudEvent]:
    return [
        CloudEvent(
            {
                "id": f"bad-{case}",
                "source": "urn:other",
                "specversion": "1.0",
                "type": SUMMARY,
                "time": T0,
                "contractid": contract.id,
            },
            data,
        )
        for case, data in BAD.items()
    ]


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_one_spec_valid_run_per_window_and_a_broken_summary_is_skipped(tmp_path: Path, contract: Contract) -> None:
    with Archive(tmp_path / "archive") as store:
        store.ingest(records([*_bad(contract), *scenario(contract)]), now=NOW)
    out = tmp_path / "lineage.jsonl"
    done = CliRunner().invoke(app, ["lineage", "--from", str(tmp_path / "archive"), "--file", str(out),
                                    "--bootstrap-servers", "b:9092"])  # fmt: skip
    assert done.exit_code == 0, done.output
    events = _read(out)
    # recomputed from the archive: one run per well-formed summary, COMPLETE iff every error check passed
    archived = read_archive(tmp_path / "archive", types=[SUMMARY])
    want = {}
    for row in archived.iter_rows(named=True):
        data = json.loads(row["data"])
        if isinstance(data, dict) and not row["id"].startswith("bad-"):
            ok = all(c["passed"] for c in data["checks"] if c["severity"] == "error")
            want[data["window"]["start"]] = ("COMPLETE" if ok else "FAIL", data["rows"], data["contract"]["version"])
    assert len(want) == 14 and {w[0] for w in want.values()} == {"COMPLETE", "FAIL"}
    got = {
        e["run"]["facets"]["nominalTime"]["nominalStartTime"]: (
            e["eventType"],
            e["inputs"][0]["inputFacets"]["dataQualityMetrics"]["rowCount"],
            e["job"]["facets"]["documentation"]["description"].split(" version ")[1].split(" ")[0],
        )
        for e in events
    }
    assert got == want
    assert [p for e in events for p in spec_problems(e)] == []


def test_the_archiver_observer_emits_the_good_windows_of_a_batch_with_a_broken_one(contract: Contract) -> None:
    sent: list[Any] = []

    class Client:
        def emit(self, event: Any) -> None:
            sent.append(event)

    good = [(e.get_id(), e.get_type(), e.get_data()) for e in scenario(contract)]
    bad = [(e.get_id(), SUMMARY, e.get_data()) for e in _bad(contract)]
    assert emit_window_summaries([*bad[:2], *good, *bad[2:]], Client(), namespace="kafka://b:9092") == 14
    assert len(sent) == 14


def test_row_count_is_the_rows_the_checks_evaluated(contract: Contract) -> None:
    from openlineage.client.serde import Serde

    data = next(e.get_data() for e in scenario(contract) if e.get_type() == SUMMARY)
    data = {**data, "records": 1100, "rows": 1000, "dead_lettered": 100}  # 100 undecodable: no check saw them
    event = json.loads(Serde.to_json(window_run_event("s1", data, namespace="kafka://b:9092")))
    metrics = event["inputs"][0]["inputFacets"]["dataQualityMetrics"]
    assert metrics["rowCount"] == 1000 and metrics["columnMetrics"]["id"]["count"] == 1000
    assert spec_problems(event) == []
