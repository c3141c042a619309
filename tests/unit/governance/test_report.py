"""The HTML report: self-contained, every plot drawn from the archived events, empty sections said so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.model import Contract
from streams.governance.archive import COLUMNS, Archive, read_archive
from streams.governance.report import render_report

from .scenario import scenario
from .test_archive import NOW, records


@pytest.fixture
def archive(tmp_path: Path, contract: Contract) -> Path:
    with Archive(tmp_path / "archive") as store:
        store.ingest(records(scenario(contract)), now=NOW)
    return tmp_path / "archive"


def test_report_is_self_contained_and_plots_the_events(archive: Path) -> None:
    html = render_report(read_archive(archive))
    assert html.startswith("<!DOCTYPE html>") and html.endswith("</html>")
    # nothing fetched: no external script, stylesheet, image, font or frame (the SVG namespace is not a fetch)
    assert not re.search(r"<(script|img|iframe|link)[^>]+(src|href)=", html)
    assert "url(" not in html and "@import" not in html
    assert set(re.findall(r"https?://[^\s\"'<]+", html)) == {"http://www.w3.org/2000/svg"}
    # failure rate per rule: one point per window of each rule, the worst window of amount:maximum at 4%
    assert html.count("<title>amount:maximum ") == 14 and "<title>amount:maximum 12-01 12:05: 4%</title>" in html
    # window verdicts: the scenario's 9 failed and 5 passed windows
    assert html.count('class="verdict-failed"') == 9 and html.count('class="verdict-passed"') == 5
    # drift heatmap: amount drifts in windows 8-11 (outlined), 2 fields x 14 windows
    assert html.count('stroke="#b00" stroke-width="2"><title>amount ') == 4
    assert len(re.findall(r"<title>(amount|country) 12-01 \d\d:\d\d: ", html)) == 28
    # confidence per model version: two series of 14 points
    assert html.count("<title>fraud-v3 ") == 14 and html.count("<title>fraud-v4 ") == 14
    # incidents with owner and action
    table = html[html.index('<table data-testid="incidents">') :]
    assert table.count("<tr>") == 5 and table.count('<td class="open">open</td>') == 1
    assert "<td>retrain-candidate (fraud-v3)</td><td>ana</td><td>#payments-oncall</td>" in table


def test_an_empty_archive_says_so_in_every_section() -> None:
    import polars as pl

    html = render_report(pl.DataFrame(schema=COLUMNS))
    for testid in ("failure-rate", "window-verdicts", "drift-heatmap", "confidence", "incidents"):
        assert re.search(rf'<p class="empty" data-testid="{testid}">', html), testid
    assert "<svg" not in html


def test_cli_writes_the_file(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "r" / "report.html"
    done = CliRunner().invoke(app, ["report", "--from", str(archive), "-o", str(out), "--since", "2026-12-01T12:10"])
    assert done.exit_code == 0, done.output
    html = out.read_text()
    assert html.count("<title>amount:maximum ") == 5  # windows whose summary came at or after 12:10
    missing = CliRunner().invoke(app, ["report", "--from", str(tmp_path / "nope"), "-o", str(out)])
    assert missing.exit_code == 2 and "not a directory" in missing.output
