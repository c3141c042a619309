"""The archive keeps every CloudEvent of the topic (another producer's, an older or a broken one): one event whose
data has the wrong shape must not stop ``qstreams report`` or ``qstreams evidence`` (before, each case below raised
KeyError, TypeError, AttributeError or polars' ComputeError). A field of the wrong type counts as absent; a policy
event naming no incident is skipped with a log line. The figures of the well-formed events are recounted here
from the archived rows with plain json (not through ``streams.governance.tables``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from cloudevents.core.v1.event import CloudEvent

from streams.contracts.model import Contract
from streams.governance.archive import Archive, read_archive
from streams.governance.evidence import ContractVersion, write_evidence
from streams.governance.report import render_report
from streams.governance.tables import confidence_table, incident_table, rule_table, window_table
from tests.unit.policies.conftest import CONTRACT

from .scenario import T0, scenario
from .test_archive import NOW, records

TRIGGERED, RESOLVED = "io.qualitystreams.policy.triggered.v1", "io.qualitystreams.policy.resolved.v1"
SUMMARY = "io.qualitystreams.window.summary.v1"
WINDOW = {"start": "2026-12-01T12:00:00Z", "end": "2026-12-01T12:01:00Z"}
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "triggered without data": (TRIGGERED, {}),
    "incident as a text": (TRIGGERED, {"incident": "x"}),
    "policy, owner, action as texts": (
        TRIGGERED,
        {"incident": {"id": "i1"}, "schema": 5, "policy": "p", "owner": [], "action": "page", "windows": [{"x": 1}]},
    ),
    "resolved without data": (RESOLVED, {}),
    "resolution without duration": (RESOLVED, {"incident": {"id": "i2"}, "resolution": {"how": "auto"}}),
    "checks as a text, records as a text": (
        SUMMARY, {"schema": "odd", "window": WINDOW, "checks": "x", "records": "many", "passed": "no"},
    ),
    "a check of the wrong types": (
        SUMMARY,
        {"schema": "other", "window": WINDOW, "checks": [{"name": 1, "failures": "3", "failure_rate": True}, 7]},
    ),
    "drift fields as texts": ("io.qualitystreams.distribution.drift.v1",
                              {"schema": "payments", "window": WINDOW, "fields": ["x", {"metrics": "m"}]}),
    "confidence of the wrong types": ("io.qualitystreams.prediction.confidence.v1",
                                      {"schema": "payments", "window": WINDOW, "count": "x", "mean_confidence": [1]}),
}  # fmt: skip


def _odd(case: str, contract: Contract) -> list[CloudEvent]:
    kind, data = CASES[case]
    attributes = {"id": f"odd-{case}", "source": "urn:other", "specversion": "1.0", "type": kind, "time": T0,
                  "contractid": contract.id, "contractversion": contract.version}  # fmt: skip
    out = [CloudEvent(attributes, data)]
    if case == "resolution without duration":  # its trigger, so the resolution is joined to an incident
        trigger = {"incident": {"id": "i2"}, "policy": {"name": "p"}, "windows": [], "action": {"type": "page"}}
        out.append(CloudEvent({**attributes, "id": "odd-trigger", "type": TRIGGERED}, trigger))
    return out


def _recount(root: Path) -> dict[str, Any]:
    rows = pl.concat([pl.read_parquet(p) for p in sorted(root.glob("date=*/contract=*/*.parquet"))])
    windows, triggered, resolved = set(), set(), set()
    for r in rows.iter_rows(named=True):
        data = json.loads(r["data"])
        incident = data.get("incident")
        iid = incident.get("id") if isinstance(incident, dict) else None
        if r["type"] == SUMMARY and isinstance(data.get("window"), dict):
            windows.add((r["contract_id"], r["contract_version"], data["schema"], data["window"]["start"]))
        if r["type"] == TRIGGERED and isinstance(iid, str):
            triggered.add(iid)
        if r["type"] == RESOLVED and isinstance(iid, str):
            resolved.add(iid)
    return {"events": rows.height, "windows": len(windows), "incidents": len(triggered),
            "open incidents": len(triggered - resolved)}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_malformed_archived_event_does_not_stop_the_report_or_the_evidence(
    tmp_path: Path, contract: Contract, case: str
) -> None:
    root = tmp_path / "archive"
    with Archive(root) as archive:
        done = archive.ingest(records([*scenario(contract), *_odd(case, contract)]), now=NOW)
    assert done.malformed == 0  # they are CloudEvents: the archive keeps them
    events = read_archive(root)
    html = render_report(events)
    cards = {k: int(v) for v, k in re.findall(r'<div class="card"><b>(\d+)</b>([^<]+)</div>', html)}
    expected = _recount(root)
    assert {k: cards[k] for k in expected} == expected
    bundle = write_evidence([ContractVersion(contract, "payments.yaml", CONTRACT)], tmp_path / "out", archive=root)
    assert bundle.incidents.height == expected["incidents"]
    assert "## 5. Incidents" in bundle.markdown.read_text(encoding="utf-8")


def test_a_field_of_the_wrong_type_counts_as_absent(tmp_path: Path, contract: Contract) -> None:
    root = tmp_path / "archive"
    cases = ("checks as a text, records as a text", "a check of the wrong types", "confidence of the wrong types",
             "policy, owner, action as texts")  # fmt: skip
    odd = [e for c in cases for e in _odd(c, contract)]
    with Archive(root) as archive:
        archive.ingest(records(odd), now=NOW)
    events = read_archive(root)
    windows = window_table(events).filter(pl.col("schema") == "odd")
    assert windows.select("records", "passed").row(0) == (None, None)
    assert rule_table(events).select("rule", "failures", "failure_rate").rows() == [(None, None, None)]
    assert confidence_table(events).select("count", "mean_confidence").rows() == [(None, None)]
    incident = incident_table(events).row(0, named=True)
    assert (incident["incident_id"], incident["schema"], incident["policy"], incident["action"]) == ("i1", None, None,
                                                                                                    None)  # fmt: skip
    assert incident["trigger_windows"] == '[{"x":1}]'
