"""Schema drift per window: records with undeclared fields, lacking declared ones or carrying values of another
type are counted in their window (across partitions and workers) and reported once, with the first offending
offsets, in one ``schema.drift`` event for the window; a window without drift gets none."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.events.codec import event_data, from_kafka, validate_event
from streams.windows.codec import Partial, decode, encode
from streams.windows.partial import MAX_UNKNOWN_FIELDS, FieldTally, merge
from streams.windows.topics import changelog_topic, state_topic

from .helpers import T0
from .test_worker_in_memory import APP, EVENTS, TOPIC, Member, running, worker

SCHEMA_DRIFT = b"io.qualitystreams.schema.drift.v1"


def value(ident: int, at: int, **change: Any) -> bytes:
    ts = datetime.fromtimestamp((T0 + at) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
    record = {"id": ident, "event_ts": ts, "amount": 5.0, "country": "DE", "code": f"c{ident}"}
    record |= change
    return orjson.dumps({k: v for k, v in record.items() if v is not ...})


def schema_drift_events(plan: list[tuple[int, bytes]], state_sizes: list[int] | None = None) -> list[dict[str, Any]]:
    """The ``schema.drift`` events (data, plus ``_severity``) of two in-memory workers fed ``plan``:
    (partition, message value) in produce order, partitions 0-2 on one worker and 3-5 on the other.
    ``state_sizes`` gets the sizes of the records written to the internal topics."""

    async def scenario() -> list[dict[str, Any]]:
        cluster = Member(None, {0, 1, 2})
        other = Member(cluster, {3, 4, 5})
        for part, v in plan:
            cluster.produce(TOPIC, v, partition=part, timestamp_ms=T0)
        a, b = worker(cluster, "w-a", idle=3.0), worker(other, "w-b", idle=3.0)

        def summaries() -> int:
            return sum(1 for m in cluster.records(EVENTS) if b"window.summary" in dict(m.headers)["ce_type"])

        async with running(a, b):
            await cluster.wait_for(lambda: summaries() >= 2, timeout=30.0)
        if state_sizes is not None:
            state_sizes.extend([len(m.value or b"") for t in (state_topic(APP), changelog_topic(APP))
                            for m in cluster.records(t)])  # fmt: skip
        out = []
        for m in cluster.records(EVENTS):
            if dict(m.headers).get("ce_type") == SCHEMA_DRIFT:
                event = from_kafka(m.key, m.value, m.headers)
                validate_event(event)
                out.append(event_data(event) | {"_severity": event.get_extension("severity")})
        return out

    return asyncio.run(asyncio.wait_for(scenario(), 60.0))


def test_one_schema_drift_event_per_drifted_window_with_counts_and_first_offsets() -> None:
    # partition 0 / 3 offsets in produce order; window 0 (0-10 s) drifts, window 1 (10-20 s) does not
    plan = [
        (0, value(1, 1_000)),
        (0, value(2, 1_500, extra="x")),  # p0 o1: undeclared "extra"
        (3, value(3, 2_000, extra="y", more=1)),  # p3 o0: undeclared "extra" and "more"
        (3, value(4, 2_500, country=...)),  # p3 o1: "country" missing
        (0, value(5, 3_000, amount="abc")),  # p0 o2: amount of another type
        (0, value(6, 3_500, extra="z", country=...)),  # p0 o3: both
        *((p, value(10 + i, 11_000 + i * 100)) for i, p in enumerate([0, 3, 0, 3])),
    ]

    [d] = schema_drift_events(plan)
    assert d["window"]["start"] == "2026-01-01T00:00:00Z" and d["records"] == 6
    assert d["unknown_fields"] == {"extra": 3, "more": 1}
    assert d["missing_fields"] == {"country": 2} and d["never_present"] == []
    assert d["type_mismatches"] == {"amount": 1} and d["_severity"] == "error"
    first = d["first_offending"]
    assert first["unknown_fields"]["extra"] == [{"partition": 0, "offset": 1}, {"partition": 0, "offset": 3},
                                                {"partition": 3, "offset": 0}]  # fmt: skip
    assert first["missing_fields"]["country"] == [{"partition": 0, "offset": 3}, {"partition": 3, "offset": 1}]
    assert first["type_mismatches"]["amount"] == [{"partition": 0, "offset": 2}]


def test_field_tallies_merge_round_trip_and_stay_bounded() -> None:
    from .test_window_profiles import records, run

    part = next(w for w in run(records(4, 60), 9) if w.rows)
    a = part.__class__(
        part.key,
        part.contract_sha256,
        offsets={0: ((0, 1),)},
        unknown={"x": FieldTally(2, ((0, 0), (0, 1)))},
        missing={"country": FieldTally(1, ((0, 1),))},
    )
    b = part.__class__(part.key, part.contract_sha256, offsets={1: ((0, 0),)}, unknown={"x": FieldTally(1, ((1, 0),)),
                       **{f"f{i}": FieldTally(1, ((1, 0),)) for i in range(MAX_UNKNOWN_FIELDS + 5)}})  # fmt: skip
    m = merge(a, b)
    assert m.unknown["x"] == FieldTally(3, ((0, 0), (0, 1), (1, 0))) and m.missing == a.missing
    assert len(m.unknown) == MAX_UNKNOWN_FIELDS and "x" in m.unknown  # the most frequent kept
    back = decode(encode(Partial(0, m)))
    assert isinstance(back, Partial) and back.partial.same(m)


def test_long_undeclared_names_are_cut_in_the_window_state_as_in_the_events() -> None:
    """Red team: a record's keys are the producer's, up to the message limit. The events cut them after 256
    characters, but the window's partials (its state records on the internal topic) carried them whole: 64
    undeclared keys of 300 KB made a state record of ~19 MB, which its topic (1 MB by default) refuses."""
    from streams.formats.names import MAX_FIELD_CHARS

    long = {f"k{i:02d}" + "x" * 300_000: i for i in range(3)}  # three names: their first characters differ
    same = {"y" * 300_000 + "a": 1, "y" * 300_000 + "b": 2}  # cut alike (same first 256 characters, same length)
    plan = [(0, value(1, 1_000, **long)), (0, value(2, 1_500, **same)), (3, value(3, 2_000, **same)),
            *((p, value(10 + i, 11_000 + i * 100)) for i, p in enumerate([0, 3, 0, 3]))]  # fmt: skip
    state_bytes: list[int] = []
    [d] = schema_drift_events(plan, state_sizes=state_bytes)
    names = d["unknown_fields"]
    assert all(len(n) < MAX_FIELD_CHARS + 40 for n in names) and len(names) == 4
    cut_y = "y" * MAX_FIELD_CHARS + "…[truncated 299745 bytes]"
    assert names[cut_y] == 2  # records 2 (both names) and 3 carry it: counted once per record
    assert d["first_offending"]["unknown_fields"][cut_y] == [{"partition": 0, "offset": 1},
                                                             {"partition": 3, "offset": 0}]  # fmt: skip
    assert len(state_bytes) > 0 and max(state_bytes) < 50_000
