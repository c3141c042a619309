"""A contract upgrade mid-window on the real broker: the worker restarts with 1.3.0 while a window holds records
1.2.0 counted; each version's records are published as that version's window summary, judged by its own rules
(1.2.0's contract read back from the compacted internal topic by the 1.3.0 worker)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.kafka.test_stream_time_kafka import message, summaries, wait_for, worker
from tests.integration.kafka.test_worker_kafka import produce, settings_for, wait_committed
from tests.unit.windows.helpers import CONTRACT

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


def test_a_restart_with_a_new_contract_version_publishes_the_old_versions_window_by_its_rules(
    kafka_broker: Any, kafka_topic_factory: Callable[..., str], kafka_group_id: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = kafka_topic_factory(partitions=1, prefix="orders")
    events = f"{topic}.events"
    text = CONTRACT.replace("physicalName: orders.v1", f"physicalName: {topic}")
    dirs = {v: tmp_path / v for v in ("v1", "v2")}
    dirs["v1"].mkdir()
    (dirs["v1"] / "orders.odcs.yaml").write_text(text)
    dirs["v2"].mkdir()  # 1.3.0 asks for 3 rows a window, not 4
    (dirs["v2"] / "orders.odcs.yaml").write_text(
        text.replace("version: 1.2.0", "version: 1.3.0").replace("OrEqualTo: 4", "OrEqualTo: 3")
    )

    def settings(version: str) -> Any:
        return settings_for(
            bootstrap, dirs[version], kafka_group_id, events, batch_events=False, window_idle_close_seconds=8.0,
            max_clock_skew_seconds=10**9, state_partitions=3,
        )  # fmt: skip

    async def scenario() -> list[dict[str, Any]]:
        await produce(bootstrap, topic, [message(i, 1_000 + 100 * i, 5.0) for i in range(3)])
        old = worker(settings("v1"), "w-old")
        task = asyncio.create_task(old.run())
        await wait_committed(bootstrap, kafka_group_id, topic)
        old.stop()  # before the idle close: the window is open
        await task
        assert await summaries(bootstrap, events) == []
        await produce(bootstrap, topic, [message(i, 1_000 + 100 * i, 5.0) for i in range(3, 6)])
        new = worker(settings("v2"), "w-new")
        task = asyncio.create_task(new.run())
        try:
            return await wait_for(lambda: _two(bootstrap, events))  # type: ignore[no-any-return]
        finally:
            new.stop()
            await task

    got = asyncio.run(scenario())
    by_version = {s["contract"]["version"]: s for s in got}
    assert sorted(by_version) == ["1.2.0", "1.3.0"] and len(got) == 2
    rows = {v: next(c["passed"] for c in s["checks"] if c["name"] == "enough_rows") for v, s in by_version.items()}
    assert [(v, by_version[v]["records"], rows[v], "unjudged" in by_version[v]) for v in sorted(rows)] == [
        ("1.2.0", 3, False, False), ("1.3.0", 3, True, False),
    ]  # fmt: skip


async def _two(bootstrap: str, events: str) -> list[dict[str, Any]] | None:
    got = await summaries(bootstrap, events)
    return got if len(got) >= 2 else None
