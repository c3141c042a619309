"""A long-running worker keeps a bounded number of published window verdicts (it kept every one: issue 13 soak)."""

from __future__ import annotations

import asyncio

import pytest

from streams.cli.stream_time import summary_record
from streams.kafka.batches import BatchWorker
from streams.observability import Health, Metrics
from streams.pipeline.binding import Binding
from streams.windows import observer as windows_observer
from streams.windows.metrics import StreamTimeMetrics
from streams.windows.observer import TransportStateReader, install

from .helpers import T0, WINDOW_MS, contract
from .test_worker_in_memory import EVENTS, PARTITIONS, Member, produce, running, settings, summaries

WINDOWS = 6


def test_the_observer_keeps_only_the_latest_published_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(windows_observer, "PUBLISHED_MEMORY", 2)

    async def scenario() -> None:
        cluster = Member(None, set(range(PARTITIONS)))
        # three records per window, one window after the other, ids unique (partition = id % partitions)
        produce(
            cluster, [(i % PARTITIONS, i, (i // 3) * WINDOW_MS + 100 * (i % 3), 1.0, "DE") for i in range(3 * WINDOWS)]
        )
        s = settings(idle=0.4)
        c = contract()
        binding = Binding(c, c.schema(), s)
        metrics = Metrics()
        observer = install(s, [binding], summary_record(EVENTS), TransportStateReader(cluster), worker_id="w",
                           tick_seconds=0.05, metrics=StreamTimeMetrics(metrics.registry))  # fmt: skip
        w = BatchWorker(s, [binding], worker_id="w", transport=cluster, metrics=metrics,
                        health=Health(max_age=60.0), observers=[observer])  # fmt: skip
        async with running(w):
            await cluster.wait_for(lambda: len(summaries(cluster)) >= WINDOWS, timeout=20.0)
        starts = sorted(int(v.key.start_ms) for v in observer.published)
        assert len(summaries(cluster)) == WINDOWS
        assert starts == [T0 + (WINDOWS - 2) * WINDOW_MS, T0 + (WINDOWS - 1) * WINDOW_MS]  # the latest two

    asyncio.run(asyncio.wait_for(scenario(), 60.0))
