"""Red team 8: an incident opened before a report's or an evidence bundle's period is an incident of the period
when it was still open at its start (resolved in it, or open all through it).

Before: ``--since`` cut the archive at the period's start, so such an incident vanished (its ``policy.triggered``
lay before the period; a ``policy.resolved`` without its trigger names no row): the bundle said "0 incidents
(0 open)" while one was open all along. The expected rows are recomputed from the whole archive, without the
code under test's period logic: every incident whose resolution is not before the period's start.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.governance.archive import Archive, read_archive
from streams.governance.evidence import contract_versions, write_evidence
from streams.governance.report import write_report
from streams.governance.tables import incident_table, incidents_open_at
from tests.unit.policies.conftest import CONTRACT

from .scenario import RATES, T0, scenario
from .test_archive import NOW, records

COLS = ("incident_id", "policy", "opened_at", "status", "resolved_at", "duration_seconds", "owners")


@pytest.fixture
def archive(tmp_path: Path, contract: Contract) -> Path:
    with Archive(tmp_path / "archive") as store:
        store.ingest(records(scenario(contract)), now=NOW)
    return tmp_path / "archive"


def expected(whole: pl.DataFrame, since: dt.datetime) -> list[tuple[object, ...]]:
    """The incidents of the period from the whole archive's table: those not resolved before ``since``."""
    keep = [r for r in whole.iter_rows(named=True) if r["resolved_at"] is None or r["resolved_at"] >= since]
    return sorted(tuple(r[c] for c in COLS) for r in keep)


SINCE = [T0 + dt.timedelta(seconds=s) for s in range(0, 60 * (len(RATES) + 2), 30)]


def test_every_period_start_keeps_the_incidents_open_at_it(archive: Path) -> None:
    whole = incident_table(read_archive(archive))
    assert whole.height == 4 and whole.filter(pl.col("status") == "open").height == 1
    carried = 0
    for since in SINCE:
        got = incident_table(read_archive(archive, since=since), incidents_open_at(archive, since))
        assert sorted(got.select(COLS).rows()) == expected(whole, since), since
        carried += got.filter(pl.col("opened_at") < since).height
    assert carried > 10  # periods that start inside an incident were really tried
    # the trace of a carried incident keeps its violation (the windows before the period)
    since = T0 + dt.timedelta(minutes=7)
    got = incident_table(read_archive(archive, since=since), incidents_open_at(archive, since))
    page = got.filter(pl.col("policy") == "amount-out-of-range").row(0, named=True)
    assert page["violations"].splitlines() == [
        "2026-12-01T12:03:00Z: amount:maximum failed, 20 record(s) (2.00%)",
        "2026-12-01T12:04:00Z: amount:maximum failed, 30 record(s) (3.00%)",
    ]


def test_the_bundle_and_the_report_count_an_incident_open_through_the_period(archive: Path, tmp_path: Path) -> None:
    path = tmp_path / "payments.yaml"
    path.write_text(CONTRACT)
    since = T0 + dt.timedelta(minutes=20)  # after the last window: amount-drift opened at 12:11 and never resolved
    bundle = write_evidence(contract_versions([path], git_history=False), tmp_path / "out", archive=archive,
                            since=since)  # fmt: skip
    assert bundle.incidents.select("policy", "status").rows() == [("amount-drift", "open")]
    assert "1 incident(s) (1 open)" in bundle.markdown.read_text()
    html = write_report(archive, tmp_path / "r.html", since=since)
    assert html.height == 0  # no event in the period ...
    page = (tmp_path / "r.html").read_text()
    table = page[page.index('<table data-testid="incidents">') :]
    assert "amount-drift" in table  # ... and yet the incident is open in it


def test_an_incident_resolved_before_the_period_stays_out(archive: Path, contract: Contract) -> None:
    assert parse_contract(CONTRACT).id == contract.id
    since = T0 + dt.timedelta(minutes=3, seconds=30)  # the first window-failing incident resolved at 12:03
    got = incident_table(read_archive(archive, since=since), incidents_open_at(archive, since))
    assert T0 + dt.timedelta(minutes=2) not in got["opened_at"].to_list()
    assert incidents_open_at(archive, T0).is_empty()  # nothing before the archive's first event
