"""Window drift on the real broker: two workers in one group over a 4-partition topic publish exactly one
``distribution.drift`` event per window, whose record count and per-field verdicts equal one polars computation
(the window's records profiled in one pass and judged against the same reference)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from streams.cli.stream_time import kafka_observers
from streams.contracts.loader import load_contract
from streams.kafka.worker import BatchWorker, build_bindings
from streams.observability import Metrics
from streams.profiles.drift import drift_against
from streams.profiles.monitor import DriftMonitor
from streams.settings import Settings
from streams.validation.engine import compile_plan
from tests.integration.kafka.test_stream_time_kafka import oracle, wait_for
from tests.integration.kafka.test_worker_kafka import produce, read_topic, settings_for
from tests.unit.windows.drift_helpers import write_contract
from tests.unit.windows.helpers import T0

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]
DRIFT = b"io.qualitystreams.distribution.drift.v1"
SUMMARY = b"io.qualitystreams.window.summary.v1"
N = 480


def message(i: int, amount: float) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    at = (i * 61) % 30_000  # three 10 s windows, in order on every partition: none late
    ts = datetime.fromtimestamp((T0 + at) / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
    value = {"id": i, "event_ts": ts, "amount": amount + (30.0 if at >= 20_000 else 0.0),
             "country": ["DE", "FR", "US"][i % 3], "code": f"c{i % 50}"}  # fmt: skip
    return str(i).encode(), orjson.dumps(value), []


def worker(settings: Settings, name: str, metrics: Metrics) -> BatchWorker:
    s = settings.model_copy(update={"worker_id": name})
    bindings = build_bindings(s)
    observers = kafka_observers(s, bindings, name, metrics)
    return BatchWorker(s, bindings, worker_id=name, metrics=metrics, observers=observers)


async def events_of(bootstrap: str, topic: str, kind: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in await read_topic(bootstrap, topic) if dict(r.headers).get("ce_type") == kind]


def test_two_workers_one_drift_event_per_window_equal_to_one_computation(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], kafka_group_id: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = kafka_topic_factory(partitions=4, prefix="orders")
    events = f"{topic}.events"
    directory = tmp_path / "contracts"
    directory.mkdir()
    contract = load_contract(write_contract(directory, topic))
    monitor = DriftMonitor.from_contract(contract)
    assert monitor is not None
    settings = settings_for(
        bootstrap, directory, kafka_group_id, events, batch_events=False, window_idle_close_seconds=10.0,
        max_clock_skew_seconds=10**9, state_partitions=3,
    ).model_copy(update={"batch_max_records": 60})  # fmt: skip
    amounts = np.random.default_rng(11).normal(40.0, 10.0, N)  # the reference's distribution
    metrics = [Metrics(), Metrics()]

    async def scenario() -> None:
        workers = [worker(settings, "w-a", metrics[0]), worker(settings, "w-b", metrics[1])]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            # both in the group and each owning partitions before any record exists, so both consume some
            async def split() -> bool:
                owned = [w._owned for w in workers]
                return all(owned) and sum(map(len, owned)) == 4

            await wait_for(split, timeout=60.0)
            await produce(bootstrap, topic, [message(i, float(amounts[i])) for i in range(N)])
            expected, _ = oracle(await read_topic(bootstrap, topic))
            assert len(expected) == 3

            async def all_drift() -> list[dict[str, Any]] | None:
                got = await events_of(bootstrap, events, DRIFT)
                return got if len(got) >= len(expected) else None

            drifts = await wait_for(all_drift, timeout=75.0)
            await asyncio.sleep(1.0)  # nothing more may come
            drifts = await events_of(bootstrap, events, DRIFT)
            summaries = await events_of(bootstrap, events, SUMMARY)
        finally:
            for w in workers:
                w.stop()
            await asyncio.gather(*tasks)
        assert all(w.committed for w in workers), "both workers consumed partitions"
        starts = collections.Counter(d["window"]["start"] for d in drifts)
        assert len(drifts) == len(expected) and set(starts.values()) == {1}, starts
        rows_of = {s["window"]["start"]: s["rows"] for s in summaries}
        conform = compile_plan(contract).conform
        for d in drifts:
            start = int(datetime.fromisoformat(d["window"]["start"].replace("Z", "+00:00")).timestamp() * 1000)
            window = expected[start]
            assert d["records"] == rows_of[d["window"]["start"]] == window.height
            truth = drift_against(monitor.reference, monitor.profile(conform(window)))
            assert {f["field"]: f["verdict"] for f in d["fields"]} == {f.field: str(f.verdict) for f in truth.fields}
            assert d["reference"]["sha256"] == monitor.reference.sha256
            assert ("amount" in d["drifted"]) == (start >= T0 + 20_000), d["window"]
        rendered = b"".join(m.render() for m in metrics).decode()
        assert 'qstreams_drift_verdict{contract="urn:test:orders",field="amount",schema="orders"}' in rendered

    asyncio.run(scenario())
