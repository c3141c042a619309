"""The HTML report's figures equal an independent recount from the archived Parquet files (read here with plain
polars and json, not through ``read_archive`` or ``streams.governance.tables``): events, event-time windows, failed
windows, batches (apart from windows), incidents and open incidents, with a replayed topic (the same events again at
new offsets) and batch-scope events in the archive."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from streams.contracts.model import Contract
from streams.governance.archive import Archive, read_archive
from streams.governance.report import render_report

from .scenario import scenario
from .test_archive import NOW, records
from .test_redteam3_batch_scope import _batch_events


def _recount(root: Path) -> dict[str, int]:
    rows = pl.concat([pl.read_parquet(p) for p in sorted(root.glob("date=*/contract=*/*.parquet"))])
    seen: dict[str, dict] = {}
    for r in rows.iter_rows(named=True):
        seen.setdefault(r["id"], r)
    windows: dict[tuple, bool | None] = {}
    batches: set[tuple] = set()
    triggered, resolved = set(), set()
    for r in seen.values():
        data, kind = json.loads(r["data"]), r["type"].split(".")[2:4]
        window = data.get("window")
        batch = (
            kind == ["batch", "summary"]
            or data.get("scope") == "batch"
            or (kind == ["schema", "drift"] and "never_present" not in data)
        )
        if isinstance(window, dict) and isinstance(data.get("schema"), str):
            key = (r["contract_id"], data["schema"], window["start"], window["end"])
            if batch:
                batches.add(key)
            else:
                windows.setdefault(key, None)
                if kind == ["window", "summary"]:
                    windows[key] = data["passed"]
        if kind == ["policy", "triggered"]:
            triggered.add(data["incident"]["id"])
        if kind == ["policy", "resolved"]:
            resolved.add(data["incident"]["id"])
    return {
        "events": len(seen), "windows": len(windows), "failed windows": sum(v is False for v in windows.values()),
        "batches (not windows)": len(batches), "incidents": len(triggered), "open incidents": len(triggered - resolved),
    }  # fmt: skip


def test_report_cards_equal_an_independent_recount(tmp_path: Path, contract: Contract) -> None:
    events = [*scenario(contract), *_batch_events(contract)]
    with Archive(tmp_path / "archive") as archive:
        archive.ingest(records(events), now=NOW)
        archive.ingest(records(events[:20], first_offset=len(events)), now=NOW)  # a replay: skipped by id
    html = render_report(read_archive(tmp_path / "archive"))
    cards = {k: int(v) for v, k in re.findall(r'<div class="card"><b>(\d+)</b>([^<]+)</div>', html)}
    expected = _recount(tmp_path / "archive")
    assert expected["windows"] == 14 and expected["batches (not windows)"] == 1 and expected["incidents"] >= 1
    assert cards == expected, (cards, expected)
