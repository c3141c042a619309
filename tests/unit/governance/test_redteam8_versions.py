"""Two versions of one contract judging the same event-time windows (a rolling deploy, a re-judgement of history
under a new version: "a new contract version is a new judgement of the same records", docs/events.md). Each
version's verdict is its own row of ``windows.parquet`` (before, both fell into one row with ``summaries: 2``, the
verdict of whichever summary's id sorted last and the version of another), and an incident's violations are the
failing checks of its own version's windows. Recounted here from the archived rows with plain json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.governance.archive import Archive, read_archive
from streams.governance.evidence import ContractVersion, write_evidence
from streams.governance.report import render_report
from streams.governance.tables import incident_table, rule_table, window_table
from tests.unit.policies.conftest import CONTRACT

from .scenario import RULE, scenario, summary
from .test_archive import NOW, records

SUMMARY = "io.qualitystreams.window.summary.v1"


def _newer(contract: Contract, windows: range) -> list[Any]:
    """Version 1.1.0's summaries of ``windows``: every check passed, 900 records."""
    out = []
    for i in windows:
        event = summary(contract, i)
        data = event.get_data()
        assert isinstance(data, dict)
        data.update(records=900, rows=900, valid=900, quarantined=0, passed=True)
        for check in data["checks"]:
            check.update(failures=0, failure_rate=0.0, passed=True, value=0)
        out.append(event)
    return out


def _archive(tmp_path: Path, contract: Contract) -> tuple[Path, Contract]:
    newer = parse_contract(CONTRACT.replace("version: 1.0.0", "version: 1.1.0"), path="payments.yaml")
    root = tmp_path / "archive"
    with Archive(root) as archive:
        archive.ingest(records([*scenario(contract), *_newer(newer, range(0, 8))]), now=NOW)
    return root, newer


def _recount(root: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per (version, schema, window start): summaries, records, quarantined, passed."""
    rows = pl.concat([pl.read_parquet(p) for p in sorted(root.glob("date=*/contract=*/*.parquet"))])
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows.iter_rows(named=True):
        if r["type"] != SUMMARY:
            continue
        data = json.loads(r["data"])
        key = (r["contract_version"], data["schema"], data["window"]["start"])
        seen = out.setdefault(key, {"summaries": 0})
        seen.update(summaries=seen["summaries"] + 1, records=data["records"], quarantined=data["quarantined"],
                    passed=data["passed"])  # fmt: skip
    return out


def test_each_version_judges_its_own_row_of_a_window(tmp_path: Path, contract: Contract) -> None:
    root, _ = _archive(tmp_path, contract)
    expected = _recount(root)
    assert len(expected) == 14 + 8
    table = window_table(read_archive(root))
    got = {
        (r["contract_version"], r["schema"], f"{r['window_start']:%Y-%m-%dT%H:%M:%SZ}"): {
            "summaries": r["summaries"], "records": r["records"], "quarantined": r["quarantined"],
            "passed": r["passed"]}
        for r in table.iter_rows(named=True)
    }  # fmt: skip
    assert got == expected
    assert table.height == len(expected)


def test_an_incident_lists_the_failures_of_its_own_version(tmp_path: Path, contract: Contract) -> None:
    root, newer = _archive(tmp_path, contract)
    events = read_archive(root)
    rules = rule_table(events)
    assert set(rules["contract_version"].to_list()) == {"1.0.0", "1.1.0"}
    incident = incident_table(events).filter(pl.col("policy") == "amount-out-of-range").row(0, named=True)
    starts = [w["start"][:19] + "Z" for w in json.loads(incident["trigger_windows"])]
    failing = []  # the oracle: failing checks of the policy's rule, version 1.0.0, in the trigger windows
    for r in events.filter(pl.col("type") == SUMMARY).iter_rows(named=True):
        data = json.loads(r["data"])
        if r["contract_version"] == incident["contract_version"] and data["window"]["start"] in starts:
            failing += [c for c in data["checks"] if c["name"] == RULE and not c["passed"]]
    assert len(failing) == len(starts) >= 2
    assert len(incident["violations"].splitlines()) == len(failing)
    # the report and the evidence name the version of each row
    html = render_report(events)
    assert "1.1.0" in html and "1.0.0" in html
    versions = [ContractVersion(contract, "a.yaml", CONTRACT), ContractVersion(newer, "b.yaml", CONTRACT)]
    bundle = write_evidence(versions, tmp_path / "out", archive=root)
    assert bundle.windows.height == 22
    text = bundle.markdown.read_text(encoding="utf-8")
    assert "| schema | contract_version | window_start |" in text
