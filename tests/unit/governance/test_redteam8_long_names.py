"""A contract id (or a topic name) whose percent-encoded form is longer than a file name may be: the archiver
raised ``OSError: File name too long`` on that record and, its offsets not advanced, again at every restart, so
one event of another producer stopped the audit trail for good. Such names are cut and suffixed with a hash of
the whole name; ``read_archive(contract=...)`` still finds exactly that contract's events."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import orjson
import pytest
from cloudevents.core.v1.event import CloudEvent

from streams.events import to_kafka
from streams.governance.archive import OFFSETS_FILE, Archive, RawRecord, read_archive

T0 = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
LONG = {
    "300 ASCII characters": "urn:" + "x" * 296,
    "64 accented letters": "urn:" + "é" * 60,
    "60 CJK characters": "urn:契約" + "契約" * 29,
    "two ids alike in their first 250 characters (a)": "urn:" + "y" * 246 + "a",
    "two ids alike in their first 250 characters (b)": "urn:" + "y" * 246 + "b",
    "the longest id a name holds whole": "urn:" + "z" * 240,
}
SHORT = "urn:test:payments"


def _record(contract: str, offset: int, topic: str = "dq.quality-events.v1") -> RawRecord:
    attributes = {"id": f"id-{offset}", "source": "urn:other", "specversion": "1.0", "time": T0,
                  "type": "io.qualitystreams.window.summary.v1", "contractid": contract}  # fmt: skip
    key, value, headers = to_kafka(CloudEvent(attributes, {"schema": "s"}))
    return RawRecord(topic, 0, offset, key, value, headers)


def _names_fit(root: Path) -> bool:
    return all(len(os.fsencode(part)) <= 255 for p in root.rglob("*") for part in p.relative_to(root).parts)


@pytest.mark.parametrize("case", sorted(LONG))
def test_a_long_contract_id_is_archived_and_read_back(tmp_path: Path, case: str) -> None:
    contracts = [SHORT, *LONG.values()]
    with Archive(tmp_path) as archive:
        done = archive.ingest([_record(c, i) for i, c in enumerate(contracts)], now=T0)
    assert (done.archived, done.malformed) == (len(contracts), 0)
    assert orjson.loads((tmp_path / OFFSETS_FILE).read_bytes())["topics"] == {
        "dq.quality-events.v1": {"0": len(contracts)}
    }
    assert _names_fit(tmp_path)
    day = tmp_path / "date=2026-12-01"
    assert (day / "contract=urn%3Atest%3Apayments").is_dir()  # ids that fit: as documented
    assert (day / f"contract=urn%3A{'z' * 240}").is_dir()
    wanted = LONG[case]
    frame = read_archive(tmp_path, contract=wanted)
    assert frame["contract_id"].to_list() == [wanted]
    assert frame["kafka_offset"].to_list() == [contracts.index(wanted)]
    assert read_archive(tmp_path)["contract_id"].sort().to_list() == sorted(contracts)


def test_the_longest_topic_name_kafka_allows_is_archived(tmp_path: Path) -> None:
    topic = "t" * 249  # Kafka's limit; the file name adds part-, partition, offset, a uid and .parquet
    with Archive(tmp_path) as archive:
        done = archive.ingest([_record(SHORT, 7, topic)], now=T0)
    assert done.archived == 1 and _names_fit(tmp_path)
    assert read_archive(tmp_path)["kafka_topic"].to_list() == [topic]
