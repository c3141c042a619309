"""Red-team pass 2: the window of a batch's events with far or invalid Kafka timestamps.

A Kafka timestamp is epoch ms, non-negative (``-1`` is Kafka's "no timestamp"); a producer may still stamp a
record at the year 10000 or later (a sentinel, a bug in ms / µs units). One such record made building the
batch's events raise: every ``rule.violation`` and ``batch.summary`` of the batch was lost."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from streams.contracts.loader import load_contract
from streams.events.types import iso_utc, ms_utc
from streams.pipeline.binding import Binding
from streams.settings import Mode, Settings
from streams.testing import generate_feature_records, make_messages
from streams.testing.generators import BASE_TIMESTAMP_MS

ROOT = Path(__file__).resolve().parents[3]
TOPIC = "features.card-transactions.v1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _events(stamp: int | None, at: int = 2) -> tuple[list[dict[str, object]], list[dict[bytes, bytes]], list[int]]:
    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    binding = Binding(contract, contract.schema(), Settings(mode=Mode.MONITOR, batch_events=True))
    records = generate_feature_records(6, seed=3, faults={"invalid_enum": 0.5}).records
    msgs = make_messages(records, TOPIC)
    msgs[at] = dataclasses.replace(msgs[at], timestamp_ms=stamp)
    result = binding.process(msgs, worker_id="w")
    datas = [orjson.loads(e.value or b"") for e in result.events]
    heads = [{k.encode(): v for k, v in e.headers} for e in result.events]
    return datas, heads, [m.timestamp_ms for m in msgs if m.timestamp_ms is not None]


@pytest.mark.parametrize("stamp", [253_402_300_800_000, 2**62, 10**17])  # the year 10000, far beyond
def test_a_record_stamped_past_the_year_9999_keeps_the_batch_events(stamp: int) -> None:
    datas, heads, _ = _events(stamp)
    kinds = [h[b"ce_type"] for h in heads]
    assert b"io.qualitystreams.batch.summary.v1" in kinds and b"io.qualitystreams.rule.violation.v1" in kinds
    for d, h in zip(datas, heads, strict=True):
        # the last instant a datetime holds: the same reading as window events (streams.events.types.ms_utc)
        assert d["window"] == {"start": iso_utc(EPOCH + timedelta(milliseconds=BASE_TIMESTAMP_MS)),  # type: ignore[index]
                               "end": "9999-12-31T23:59:59.999999Z"}  # fmt: skip
        assert h[b"ce_time"] == b"9999-12-31T23:59:59.999999Z"


@pytest.mark.parametrize("stamp", [-1, -5000])
def test_a_negative_kafka_timestamp_is_no_timestamp(stamp: int) -> None:
    datas, heads, _ = _events(stamp, at=0)
    _, _, base = _events(None, at=0)  # the same batch with that record unstamped
    want = {"start": iso_utc(EPOCH + timedelta(milliseconds=min(base))),
            "end": iso_utc(EPOCH + timedelta(milliseconds=max(base)))}  # fmt: skip
    assert datas and all(d["window"] == want for d in datas)
    summary = next(d for d, h in zip(datas, heads, strict=True) if h[b"ce_type"].endswith(b"summary.v1"))
    since_first = (datetime.now(UTC) - EPOCH - timedelta(milliseconds=min(base))).total_seconds()
    assert since_first - 60 < float(summary["latency_seconds"]) <= since_first  # type: ignore[arg-type]


@pytest.mark.parametrize("ms", [253_402_300_799_998, 253_402_300_799_001, 32_503_680_000_123, 1_740_787_200_004, 0])
def test_ms_utc_is_exact_to_the_millisecond(ms: int) -> None:
    # a float of seconds past ~2^33 s (the year 2242) has no microsecond resolution: .998 read as .997985
    assert ms_utc(ms) == EPOCH + timedelta(milliseconds=ms)
