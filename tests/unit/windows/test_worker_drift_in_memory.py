"""Drift in the real worker loop (in-memory transport): two workers over six partitions publish, per window,
one ``window.summary`` and one ``distribution.drift`` whose record count and profile equal one computation over
the window's records; metrics carry the drift score per field."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl

from streams.cli.stream_time import summary_record
from streams.contracts.loader import load_contract
from streams.events.codec import event_data, from_kafka, validate_event
from streams.kafka.batches import BatchWorker
from streams.observability import Health, Metrics
from streams.pipeline.binding import Binding
from streams.profiles.drift import drift_against
from streams.profiles.monitor import DriftMonitor
from streams.validation.engine import compile_plan
from streams.windows.observer import TransportStateReader, install

from .drift_helpers import write_contract
from .helpers import T0
from .test_worker_in_memory import EVENTS, PARTITIONS, Member, oracle, produce, running, settings

DRIFT = b"io.qualitystreams.distribution.drift.v1"
SUMMARY = b"io.qualitystreams.window.summary.v1"

_AMOUNTS = np.random.default_rng(3).normal(40.0, 10.0, 480)  # the reference's distribution (drift_helpers)
ROWS = [  # (partition, id, event time offset ms, amount, country): the amounts of the third window shift by +30
    (i % PARTITIONS, i, (i * 61) % 30_000, float(_AMOUNTS[i]) + (30.0 if (i * 61) % 30_000 >= 20_000 else 0.0),
     ["DE", "FR", "US"][i % 3])
    for i in range(480)
]  # fmt: skip


def worker(transport: Member, name: str, contract_path: Path, metrics: Metrics) -> BatchWorker:
    s = settings(8.0)  # idle close well above a busy worker's turn over its partitions
    c = load_contract(contract_path)
    binding = Binding(c, c.schema(), s)
    observer = install(s, [binding], summary_record(EVENTS), TransportStateReader(transport), worker_id=name,
                       tick_seconds=0.05, registry=metrics.registry)  # fmt: skip
    return BatchWorker(s, [binding], worker_id=name, transport=transport, metrics=metrics,
                       health=Health(max_age=60.0), observers=[observer])  # fmt: skip


def events(cluster: Member, kind: bytes) -> list[dict]:
    out = []
    for m in cluster.records(EVENTS):
        if dict(m.headers).get("ce_type") == kind:
            event = from_kafka(m.key, m.value, m.headers)
            validate_event(event)
            out.append(event_data(event) | {"_id": event.get_id()})
    return out


def test_two_workers_one_drift_event_per_window_equal_to_one_computation(tmp_path: Path) -> None:
    path = write_contract(tmp_path)
    contract = load_contract(path)
    monitor = DriftMonitor.from_contract(contract)
    assert monitor is not None
    rows = [(p, i, t, a, c) for p, i, t, a, c in ROWS]
    expected = oracle(rows)
    metrics = Metrics()

    async def scenario() -> None:
        cluster = Member(None, {0, 1, 2})
        other = Member(cluster, {3, 4, 5})
        produce(cluster, rows)
        a, b = worker(cluster, "w-a", path, metrics), worker(other, "w-b", path, Metrics())
        async with running(a, b):
            await cluster.wait_for(lambda: len(events(cluster, DRIFT)) >= len(expected), timeout=30.0)
            await asyncio.sleep(0.3)  # nothing more may come
        drifts, summaries = events(cluster, DRIFT), events(cluster, SUMMARY)
        assert len(drifts) == len(summaries) == len(expected) == 3
        assert set(Counter(d["window"]["start"] for d in drifts).values()) == {1}
        assert len({d["_id"] for d in drifts}) == len(drifts)
        rows_of = {s["window"]["start"]: s["rows"] for s in summaries}
        conform = compile_plan(contract).conform
        for d in drifts:
            start = int(pl.Series([d["window"]["start"]]).str.to_datetime().dt.epoch("ms")[0])
            window = expected[start].with_columns(pl.lit("a").alias("code"))
            assert d["records"] == rows_of[d["window"]["start"]] == window.height
            truth = drift_against(monitor.reference, monitor.profile(conform(window)))
            got = {f["field"]: f["verdict"] for f in d["fields"]}
            assert got == {f.field: str(f.verdict) for f in truth.fields}
            assert ("amount" in d["drifted"]) == (start >= T0 + 20_000), d["window"]
        text = metrics.render().decode()
        assert "qstreams_drift_score{" in text and 'field="amount"' in text

    asyncio.run(asyncio.wait_for(scenario(), 60.0))
