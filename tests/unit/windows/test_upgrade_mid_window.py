"""A contract upgrade while windows are open: every record is counted in one window verdict, judged by the version
that counted it.

Partials carry the contract version, the heartbeat does not. The new version restored the partition's clock and
``counted_through`` but neither restored nor merged the old version's partials: the old version's summary of the
open windows was never published (three records of six were counted nowhere), and the old partials stayed in the
compacted topic. Each worker now writes the text of its contract version to the internal topic when it starts; the
merger merges every version's partials apart and judges each version's windows with that version's contract.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import orjson
import pytest

from streams.cli.stream_time import summary_record
from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.kafka.transport import TopicPartition
from streams.pipeline.binding import Binding
from streams.pipeline.records import Message
from streams.settings import Settings
from streams.testing.transport import InMemoryTransport
from streams.windows.codec import ContractText, decode
from streams.windows.finalize import WindowVerdict
from streams.windows.observer import StreamTimeObserver, TransportStateReader, install
from streams.windows.topics import changelog_topic, state_topic

from .helpers import CONTRACT, T0, WINDOW_MS

TOPIC, EVENTS, APP = "orders.v1", "events", "qs-upgrade"
V1 = parse_contract(CONTRACT, path="orders.yaml")
# 1.3.0 asks for 3 rows a window instead of 4: a window of 3 records fails 1.2.0's rowCount and passes 1.3.0's
V2 = parse_contract(
    CONTRACT.replace("version: 1.2.0", "version: 1.3.0").replace("OrEqualTo: 4", "OrEqualTo: 3"), path="orders.yaml"
)
FAR = 10**15  # a tick this far ahead finds every partition idle: every window is final


def settings(idle_s: float = 5.0) -> Settings:
    return Settings(bootstrap_servers="memory:9092", app_id=APP, events_topic=EVENTS, window_idle_close_seconds=idle_s,
                    max_clock_skew_seconds=10**9, state_partitions=3, web_port=0)  # fmt: skip


def cluster(partitions: int = 1) -> InMemoryTransport:
    return InMemoryTransport(sources=[TOPIC], partitions={TOPIC: partitions, state_topic(APP): 3,
                                                          changelog_topic(APP): 3, EVENTS: 1})  # fmt: skip


async def member(
    transport: InMemoryTransport, name: str, contract: Contract, parts: set[int], idle_s: float = 5.0
) -> tuple[Binding, StreamTimeObserver]:
    """A worker on ``contract`` consuming ``parts`` (restored from the topics); no tick task runs."""
    s = settings(idle_s)
    binding = Binding(contract, contract.schema(), s)
    observer = install(s, [binding], summary_record(EVENTS), TransportStateReader(transport), worker_id=name,
                       tick_seconds=3600.0)  # fmt: skip
    await observer.on_start(transport)
    assert observer._task is not None
    observer._task.cancel()  # ticks are called by hand
    await observer.on_assign({TopicPartition(TOPIC, p) for p in parts})
    return binding, observer


def produce(transport: InMemoryTransport, n: int, partition: int = 0, at_ms: int = 1_000) -> list[Message]:
    out = []
    for i in range(n):
        ms = T0 + at_ms + 100 * i
        ts = datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
        value = {"id": i, "event_ts": ts, "amount": 5.0, "country": "DE", "code": f"c{partition}-{i}"}
        out.append(transport.produce(TOPIC, orjson.dumps(value), partition=partition, timestamp_ms=ms))
    return out


async def write(transport: InMemoryTransport, binding: Binding, messages: list[Message], name: str,
                keep: int | None = None) -> None:  # fmt: skip
    """Process a batch and write its stream-time records (all, or the first ``keep``: a worker killed meanwhile)."""
    result = binding.process(messages, worker_id=name)
    state = [r for r in result.events if r.topic in (state_topic(APP), changelog_topic(APP))]
    for record in state[:keep]:
        await transport.send(record)


def summaries(transport: InMemoryTransport) -> list[dict]:
    out = []
    for m in transport.records(EVENTS):
        event = orjson.loads(m.value)
        data = event.get("data", event)
        if "window" in data and "checks" in data and "records" in data:
            out.append(data)
    return out


def test_an_upgrade_mid_window_publishes_each_versions_records_judged_by_that_version() -> None:
    async def scenario() -> tuple[list[WindowVerdict], InMemoryTransport]:
        transport = cluster()
        now = int(datetime.now(UTC).timestamp() * 1000)
        b1, o1 = await member(transport, "w1", V1, {0})
        messages = produce(transport, 6)
        await write(transport, b1, messages[:3], "w1")
        o1.on_commit(TopicPartition(TOPIC, 0), messages[2].offset + 1, 0.0)
        b2, o2 = await member(transport, "w2", V2, {0})  # the worker restarts with 1.3.0 mid-window
        await write(transport, b2, messages[3:], "w2")
        o2.on_commit(TopicPartition(TOPIC, 0), messages[-1].offset + 1, 0.0)
        return await o2.tick(now + 20_000), transport

    verdicts, transport = asyncio.run(scenario())
    assert [(v.key.contract_version, v.key.start_ms, v.records, v.unjudged) for v in verdicts] == [
        ("1.2.0", T0, 3, None), ("1.3.0", T0, 3, None),
    ]  # fmt: skip
    old, new = verdicts
    assert old.contract_sha256 == V1.sha256 and new.contract_sha256 == V2.sha256
    # each by its own rules: 3 rows fail 1.2.0's rowCount (>= 4) and pass 1.3.0's (>= 3)
    assert (old.check("enough_rows").result.passed, new.check("enough_rows").result.passed) == (False, True)
    published = sorted((s["contract"]["version"], s["records"], s["passed"]) for s in summaries(transport))
    assert published == [("1.2.0", 3, False), ("1.3.0", 3, True)]
    # nothing of the old version stays in the compacted topic: its partials were tombstoned with the close
    live: dict[bytes, bytes | None] = {}
    for m in transport.records(state_topic(APP)):
        live[m.key or b""] = m.value
    kinds = [type(decode(v)).__name__ for v in live.values() if v is not None]
    assert "Partial" not in kinds and kinds.count("ContractText") == 2


def test_a_rolling_upgrade_judges_each_workers_partitions_by_the_version_it_runs() -> None:
    """Partition 0 (and the merger) on 1.3.0 while partition 1 is still on 1.2.0, and the other way round."""

    async def scenario(merger_version: Contract, other: Contract) -> list[WindowVerdict]:
        transport = cluster(2)
        now = int(datetime.now(UTC).timestamp() * 1000)
        b0, o0 = await member(transport, "w0", merger_version, {0})
        b1, o1 = await member(transport, "w1", other, {1})
        for b, o, p, n in ((b0, o0, 0, 2), (b1, o1, 1, 3)):
            messages = produce(transport, n, partition=p)
            await write(transport, b, messages, o.worker_id)
            o.on_commit(TopicPartition(TOPIC, p), messages[-1].offset + 1, 0.0)
        await o1.tick(now)
        return await o0.tick(now + 20_000)

    for merger_version, other in ((V2, V1), (V1, V2)):
        verdicts = asyncio.run(scenario(merger_version, other))
        got = sorted((v.key.contract_version, v.records, v.contract_sha256) for v in verdicts)
        assert got == sorted([(merger_version.version, 2, merger_version.sha256), (other.version, 3, other.sha256)])
        assert all(v.unjudged is None and v.checks for v in verdicts)


def test_windows_of_a_version_whose_contract_is_not_found_are_published_without_checks_stating_why() -> None:
    """A worker older than the contract record (or whose record was lost) left partials no version here can
    judge: they are published with their counts, no checks, not passed, and the reason."""

    async def scenario() -> tuple[list[WindowVerdict], InMemoryTransport]:
        transport = cluster()
        now = int(datetime.now(UTC).timestamp() * 1000)
        b1, o1 = await member(transport, "w1", V1, {0})
        messages = produce(transport, 6)
        await write(transport, b1, messages[:3], "w1")
        o1.on_commit(TopicPartition(TOPIC, 0), messages[2].offset + 1, 0.0)
        logs = transport.logs[state_topic(APP)]  # as if 1.2.0's worker never wrote its text (an older worker)
        transport.logs[state_topic(APP)] = [[m for m in log if not isinstance(decode(m.value), ContractText)]
                                            for log in logs]  # fmt: skip
        b2, o2 = await member(transport, "w2", V2, {0})
        await write(transport, b2, messages[3:], "w2")
        o2.on_commit(TopicPartition(TOPIC, 0), messages[-1].offset + 1, 0.0)
        return await o2.tick(now + 20_000), transport

    verdicts, transport = asyncio.run(scenario())
    assert [(v.key.contract_version, v.records, v.checks == (), v.passed) for v in verdicts] == [
        ("1.2.0", 3, True, False), ("1.3.0", 3, False, True),
    ]  # fmt: skip
    assert verdicts[0].unjudged is not None and "urn:test:orders@1.2.0" in verdicts[0].unjudged
    old = [s for s in summaries(transport) if s["contract"]["version"] == "1.2.0"]
    assert [(s["records"], s["checks"], s["passed"], "not found" in s["unjudged"]) for s in old] == [
        (3, [], False, True)
    ]


def test_records_the_old_version_counted_before_its_heartbeat_was_written_are_not_counted_again() -> None:
    """1.2.0's worker is killed while writing a batch's outputs: its partial of the batch's window got out, the
    heartbeat did not. 1.3.0 reads the batch again: it observes those records (for the clock) and does not count
    them in its own window too."""

    async def scenario() -> list[WindowVerdict]:
        transport = cluster()
        now = int(datetime.now(UTC).timestamp() * 1000)
        b1, o1 = await member(transport, "w1", V1, {0})
        messages = produce(transport, 6)
        await write(transport, b1, messages[:3], "w1")
        o1.on_commit(TopicPartition(TOPIC, 0), messages[2].offset + 1, 0.0)
        await write(transport, b1, messages[3:], "w1", keep=1)  # the partial only; killed, nothing committed
        b2, o2 = await member(transport, "w2", V2, {0})
        await write(transport, b2, messages[3:], "w2")
        o2.on_commit(TopicPartition(TOPIC, 0), messages[-1].offset + 1, 0.0)
        return await o2.tick(now + 20_000)

    verdicts = asyncio.run(scenario())
    assert [(v.key.contract_version, v.records) for v in verdicts] == [("1.2.0", 6)]


async def _random_stream(seed: int, new: Contract = V2) -> tuple[int, list[WindowVerdict], set[str]]:
    """Records on 1-3 partitions consumed by 1-2 workers, each restarted with ``new`` (1.3.0) at a random point (a
    rolling upgrade when there are two), with crashes (some while a batch's outputs are being written) and ticks
    between. Returns the number of records, every verdict published, and the sha256 of the contract texts that
    processed records."""
    rnd = random.Random(seed)
    nparts, nworkers = rnd.randint(1, 3), rnd.randint(1, 2)
    transport = cluster(nparts)
    by_part: dict[int, list[Message]] = {p: [] for p in range(nparts)}
    clock = dict.fromkeys(range(nparts), 0)
    for i in range(rnd.randint(10, 60)):
        p = rnd.randrange(nparts)
        clock[p] += rnd.choice([0, 100, 1_000, 3_000])
        ms = T0 + max(0, clock[p] + rnd.choice([0, 0, -1_000, -5_000, -WINDOW_MS]))
        ts = datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
        value = {"id": i, "event_ts": ts, "amount": rnd.choice([5.0, -1.0]), "country": "DE", "code": f"c{i}"}
        by_part[p].append(transport.produce(TOPIC, orjson.dumps(value), partition=p, timestamp_ms=ms))
    total = sum(len(m) for m in by_part.values())
    owner = {p: (0 if p == 0 else rnd.randrange(nworkers)) for p in range(nparts)}
    version = dict.fromkeys(range(nworkers), V1)
    upgrade_at = {w: rnd.randrange(total + 1) for w in range(nworkers)}  # after how many records taken
    workers: dict[int, tuple[Binding, StreamTimeObserver]] = {}
    committed = dict.fromkeys(range(nparts), 0)
    processed_by: set[str] = set()
    verdicts: list[WindowVerdict] = []
    now = int(datetime.now(UTC).timestamp() * 1000)
    restarts = 0

    async def start(w: int) -> None:
        nonlocal restarts
        restarts += 1
        parts = {p for p, o in owner.items() if o == w}
        workers[w] = await member(transport, f"w{w}-{restarts}", version[w], parts, idle_s=10**6)

    for w in range(nworkers):
        await start(w)
    position = dict(committed)
    while any(position[p] < len(by_part[p]) for p in range(nparts)):
        taken = sum(committed.values())
        for w in range(nworkers):
            if version[w] is V1 and taken >= upgrade_at[w]:
                version[w] = new
                for p, o in owner.items():
                    if o == w:
                        position[p] = committed[p]
                await start(w)  # restarted with the new contract
        action = rnd.random()
        w = rnd.randrange(nworkers)
        if action < 0.08:  # a crash (or a restart): its partitions are read again from the last commit
            for p, o in owner.items():
                if o == w:
                    position[p] = committed[p]
            await start(w)
            continue
        if action < 0.3:
            for _, o in workers.values():
                verdicts += await o.tick(now)
            continue
        mine = [p for p, o in owner.items() if o == w and position[p] < len(by_part[p])]
        if not mine:
            continue
        p = rnd.choice(mine)
        batch = by_part[p][position[p] : position[p] + rnd.choice([1, 2, 3, 5, 8])]
        binding, observer = workers[w]
        processed_by.add(binding.contract.sha256)
        if rnd.random() < 0.1:  # killed while writing the batch's outputs: a prefix got out, nothing committed
            result = binding.process(batch, worker_id=observer.worker_id)
            state = [r for r in result.events if r.topic in (state_topic(APP), changelog_topic(APP))]
            for record in state[: rnd.randrange(len(state) + 1)]:
                await transport.send(record)
            for q, o in owner.items():
                if o == w:
                    position[q] = committed[q]
            await start(w)
            continue
        await write(transport, binding, batch, observer.worker_id)
        position[p] += len(batch)
        committed[p] = position[p]
        observer.on_commit(TopicPartition(TOPIC, p), committed[p], 0.0)
    for _, o in workers.values():
        verdicts += await o.tick(now)
    merger = workers[owner[0]][1]
    verdicts += await merger.tick(FAR)
    assert merger.mergers[TOPIC][0].pending_late == 0
    return total, verdicts, processed_by


@pytest.mark.parametrize("seed", range(40))
def test_every_record_is_counted_once_across_a_random_upgrade(seed: int) -> None:
    total, verdicts, processed_by = asyncio.run(_random_stream(seed))
    keys = [v.key for v in verdicts]
    assert len(keys) == len(set(keys))  # one verdict per (window, version)
    assert sum(v.records + v.late for v in verdicts) == total
    assert all(v.unjudged is None for v in verdicts)
    assert {v.contract_sha256 for v in verdicts} <= processed_by
    assert all(v.contract_sha256 == {"1.2.0": V1, "1.3.0": V2}[v.key.contract_version].sha256 for v in verdicts)
