"""The audit archive without a broker: records fed from a list, crashes simulated at each step of a write."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import orjson
import polars as pl
import pytest
from cloudevents.core.v1.event import CloudEvent

from streams.contracts.model import Contract
from streams.errors import ArchiveError, StreamsError
from streams.events import to_kafka
from streams.governance.archive import COLUMNS, OFFSETS_FILE, Archive, RawRecord, read_archive

from .scenario import T0, scenario

NOW = T0 + dt.timedelta(hours=1)
TOPIC = "dq.quality-events.v1"


def records(events: list[CloudEvent], first_offset: int = 0, partition: int = 0) -> list[RawRecord]:
    out = []
    for i, event in enumerate(events):
        key, value, headers = to_kafka(event)
        out.append(RawRecord(TOPIC, partition, first_offset + i, key, value, headers))
    return out


def archived_ids(root: Path) -> list[str]:
    return read_archive(root)["id"].to_list()


def test_events_land_once_in_date_and_contract_partitions(tmp_path: Path, contract: Contract) -> None:
    events = scenario(contract)
    with Archive(tmp_path) as archive:
        result = archive.ingest(records(events), now=NOW)
    assert (result.archived, result.duplicates, result.malformed) == (len(events), 0, 0)
    frame = read_archive(tmp_path)
    assert frame.schema == pl.Schema(COLUMNS)
    assert sorted(frame["id"].to_list()) == sorted(e.get_id() for e in events)
    dirs = {p.parent.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet")}
    assert dirs == {"date=2026-12-01/contract=urn%3Atest%3Apayments"}
    summary = frame.filter(pl.col("type") == "io.qualitystreams.window.summary.v1").row(0, named=True)
    assert summary["schema"] == "payments" and summary["window_start"] == T0 and summary["contract_version"] == "1.0.0"
    assert orjson.loads(summary["data"])["records"] == 1000
    assert frame["kafka_offset"].sort().to_list() == list(range(len(events)))
    offsets = orjson.loads((tmp_path / OFFSETS_FILE).read_bytes())
    assert offsets == {"version": 1, "topics": {TOPIC: {"0": len(events)}}}


def test_replays_and_a_reopened_archive_add_nothing(tmp_path: Path, contract: Contract) -> None:
    events = scenario(contract)
    with Archive(tmp_path) as archive:
        archive.ingest(records(events[:30]), now=NOW)
        again = archive.ingest(records(events[:30]), now=NOW)  # the same records read again
    assert (again.archived, again.duplicates, again.files) == (0, 30, [])
    with Archive(tmp_path) as reopened:
        assert reopened.next_offset(TOPIC, 0) == 30
        # the same events published again at new offsets (a producer retried), and the rest
        result = reopened.ingest(records(events, first_offset=100), now=NOW)
    assert (result.archived, result.duplicates) == (len(events) - 30, 30)
    ids = archived_ids(tmp_path)
    assert len(ids) == len(set(ids)) == len(events)


def test_a_crash_before_the_offsets_are_written_rereads_without_doubling(
    tmp_path: Path, contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = scenario(contract)
    with Archive(tmp_path) as archive:
        archive.ingest(records(events[:20]), now=NOW)

        def crash(self: Archive) -> None:
            raise KeyboardInterrupt("killed after the rename, before the offsets")

        monkeypatch.setattr(Archive, "_write_offsets", crash)
        with pytest.raises(KeyboardInterrupt):
            archive.ingest(records(events[20:40], first_offset=20), now=NOW)
    monkeypatch.undo()
    assert len(archived_ids(tmp_path)) == 40  # the files were in place
    with Archive(tmp_path) as reopened:
        assert reopened.next_offset(TOPIC, 0) == 20  # ... but the offsets were not advanced
        resumed = reopened.ingest(records(events[20:], first_offset=20), now=NOW)
    assert (resumed.archived, resumed.duplicates) == (len(events) - 40, 20)
    ids = archived_ids(tmp_path)
    assert len(ids) == len(set(ids)) == len(events)


def test_a_crash_between_two_renames_of_one_batch_loses_nothing(
    tmp_path: Path, contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = scenario(contract)
    next_day = events[:5]  # the same window events, a day later: a second date partition
    shifted = []
    for e in next_day:
        attributes = dict(e.get_attributes())
        attributes["id"] = "d2-" + e.get_id()
        attributes["time"] = e.get_time() + dt.timedelta(days=1)  # type: ignore[operator]
        shifted.append(CloudEvent(attributes, e.get_data()))
    batch = records(events[:10] + shifted)
    real_replace = os.replace
    calls = {"n": 0}

    def replace_once(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if str(src).endswith(".parquet") and "_tmp" in str(src):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt("killed between the renames of one batch")
        real_replace(src, dst)

    with Archive(tmp_path) as archive:
        monkeypatch.setattr(os, "replace", replace_once)
        with pytest.raises(KeyboardInterrupt):
            archive.ingest(batch, now=NOW + dt.timedelta(days=1))
        monkeypatch.undo()
    assert len(archived_ids(tmp_path)) == 10 and (tmp_path / "_tmp").exists()
    with Archive(tmp_path) as reopened:
        assert not (tmp_path / "_tmp").exists()  # the staged file of the interrupted batch is gone
        assert reopened.next_offset(TOPIC, 0) is None
        result = reopened.ingest(batch, now=NOW + dt.timedelta(days=1))
    assert (result.archived, result.duplicates) == (5, 10)
    ids = archived_ids(tmp_path)
    assert len(ids) == len(set(ids)) == 15
    assert {p.name for p in tmp_path.glob("date=*")} == {"date=2026-12-01", "date=2026-12-02"}


def test_malformed_records_are_skipped_with_a_log_line(
    tmp_path: Path, contract: Contract, caplog: pytest.LogCaptureFixture
) -> None:
    good = records(scenario(contract)[:3])
    bad = [
        RawRecord(TOPIC, 0, 3, b"k", b"not json", [("ce_id", b"x")]),  # no specversion / type
        RawRecord(TOPIC, 0, 4, b"k", None, []),  # a tombstone
    ]
    with caplog.at_level(logging.WARNING), Archive(tmp_path) as archive:
        result = archive.ingest([*good, *bad], now=NOW)
        assert archive.next_offset(TOPIC, 0) == 5  # read past them
    assert (result.archived, result.malformed) == (3, 2)
    assert sum("not a quality event" in r.getMessage() for r in caplog.records) == 2
    assert "dq.quality-events.v1[0]@4" in caplog.text


def test_retention_drops_old_partitions_and_refuses_old_events(tmp_path: Path, contract: Contract) -> None:
    events = scenario(contract)
    with Archive(tmp_path) as archive:
        archive.ingest(records(events), now=NOW)
    later = NOW + dt.timedelta(days=10)
    with Archive(tmp_path, retention_days=7) as archive:
        assert archive.apply_retention(now=later) == [tmp_path / "date=2026-12-01"]
        assert len(archive) == 0
        result = archive.ingest(records(events, first_offset=len(events)), now=later)
    assert (result.archived, result.expired) == (0, len(events))
    assert read_archive(tmp_path).is_empty()
    with pytest.raises(ArchiveError, match="at least 1 day"):
        Archive(tmp_path / "other", retention_days=0)


def test_one_writer_per_directory(tmp_path: Path) -> None:
    with Archive(tmp_path), pytest.raises(ArchiveError, match="Another archiver is writing") as info:
        Archive(tmp_path)
    assert isinstance(info.value, StreamsError)
    Archive(tmp_path).close()  # free again


def test_read_archive_filters(tmp_path: Path, contract: Contract) -> None:
    events = scenario(contract)
    with Archive(tmp_path) as archive:
        archive.ingest(records(events), now=NOW)
    since = read_archive(tmp_path, since=T0 + dt.timedelta(minutes=10), types=["io.qualitystreams.window.summary.v1"])
    assert since["window_start"].min() == T0 + dt.timedelta(minutes=9)  # the summary at 12:10 ends window 9
    assert since.height == 5
    assert read_archive(tmp_path, contract="urn:test:other").is_empty()
    with pytest.raises(ArchiveError, match="not a directory"):
        read_archive(tmp_path / "missing")
