"""With stream time on, a poll of several partitions is decoded and validated once; everything else stays per partition.

The same records run through two workers on the in-memory transport, each with stream time installed (a
``WindowsStage`` on the binding, the observer restoring and merging): one with the default poll path (one decode
and one validation per poll of the topic, each partition batch's slice through the stages and routing), one forced
to process partition by partition. Their outputs per output partition, commits, per-partition batches, window
partials and uniqueness changelog records per source partition must be identical.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams.cli.stream_time import summary_record
from streams.contracts.loader import load_contract
from streams.kafka.batches import BatchWorker
from streams.kafka.transport import TopicPartition
from streams.observability import Health, Metrics
from streams.pipeline.binding import Binding
from streams.settings import Settings
from streams.testing import generate_feature_records
from streams.testing.transport import InMemoryTransport
from streams.windows.codec import Partial, decode
from streams.windows.observer import TransportStateReader, install
from streams.windows.topics import changelog_topic, state_topic
from tests.unit.kafka.test_poll_together import DLQ, PARTS, PER, QUARANTINE, VALIDATED, Counts, outputs
from tests.unit.kafka.test_worker_inmemory import CONTRACT, EVENTS, TOPIC, run, running

APP = "qs-poll"
STATE, CHANGELOG = state_topic(APP), changelog_topic(APP)
T0 = 1_740_787_200_000


def cluster() -> InMemoryTransport:
    """Three source partitions of faulty records, each with an undecodable message, an event id repeated within
    the partition (a stream duplicate) and one repeated from another partition (not one: uniqueness is per
    partition), and a record whose event time is far behind its partition's (late)."""
    sizes = {TOPIC: PARTS, VALIDATED: PARTS, QUARANTINE: PARTS, DLQ: PARTS, STATE: 2, CHANGELOG: 2, EVENTS: 1}
    transport = InMemoryTransport(sources=[TOPIC], partitions=sizes)
    batches = [generate_feature_records(PER, seed=200 + p, faults={"wrong_type": 0.1, "invalid_enum": 0.1})
               for p in range(PARTS)]  # fmt: skip
    for p, batch in enumerate(batches):
        records = list(batch.records)
        records[20] = records[3]  # the same event again on this partition
        records[21] = batches[(p + 1) % PARTS].records[4]  # another partition's event
        for i, r in enumerate(records):
            value = b"{broken" if i == 7 else orjson.dumps(r)
            at = T0 + 120_000 + 1_000 * i if i != 30 else T0  # record 30 is late (windows of 60 s, 10 s lateness)
            transport.produce(TOPIC, value, key=b"k%d" % i, partition=p, timestamp_ms=at)
    return transport


def worker(transport: InMemoryTransport, counts: Counts, **more: Any) -> BatchWorker:
    settings = Settings(bootstrap_servers="memory:9092", app_id=APP, events_topic=EVENTS, batch_max_latency_ms=5,
                        retry_backoff_ms=20, topic_check_interval_s=60.0, web_port=0, state_partitions=2,
                        max_clock_skew_seconds=10**9, **more)  # fmt: skip
    contract = load_contract(CONTRACT)
    binding = Binding(contract, contract.schema(), settings)
    observer = install(settings, [binding], summary_record(EVENTS), TransportStateReader(transport), worker_id="w1",
                       tick_seconds=3600.0)  # fmt: skip
    return BatchWorker(settings, [binding], worker_id="w1", transport=transport, metrics=Metrics(),
                       health=Health(max_age=60.0), observers=[observer, counts])  # fmt: skip


def drive(together: bool, **settings: Any) -> tuple[InMemoryTransport, list[int], Counts]:
    transport = cluster()
    counts = Counts()
    w = worker(transport, counts, **settings)
    binding = w.bindings[TOPIC]
    decoded: list[int] = []
    decode_ = binding.decoder.decode
    binding.decoder.decode = lambda ms: decoded.append(len(ms)) or decode_(ms)  # type: ignore[method-assign]
    if not together:
        w._together = lambda group: None  # type: ignore[method-assign]

    async def scenario() -> None:
        async with running(w):
            await transport.wait_for(lambda: sum(transport.committed.get(TopicPartition(TOPIC, p), 0)
                                                 for p in range(PARTS)) == PARTS * PER)  # fmt: skip

    run(scenario)
    return transport, decoded, counts


def stream_state(transport: InMemoryTransport) -> tuple[dict[int, list[Any]], list[tuple[Any, ...]]]:
    """The window partials per source partition, in order (heartbeats carry the wall clock: left out), and every
    uniqueness changelog record."""
    partials: dict[int, list[Any]] = {}
    for q in range(2):
        for m in transport.records(STATE, q):
            rec = decode(m.value) if m.value is not None else None
            if isinstance(rec, Partial):
                partials.setdefault(rec.partition, []).append(m.value)
    changes = sorted((m.key or b"", m.value or b"") for q in range(2) for m in transport.records(CHANGELOG, q))
    return partials, changes


@pytest.mark.parametrize("exactly_once", [False, True])
def test_stream_time_one_decode_per_poll_and_the_same_outputs_state_and_commits(exactly_once: bool) -> None:
    poll, decoded, counts = drive(True, exactly_once=exactly_once)
    alone, decoded_alone, counts_alone = drive(False, exactly_once=exactly_once)

    assert decoded == [PARTS * PER]  # the whole poll (3 partitions) in one decode call
    assert decoded_alone == [PER] * PARTS
    assert outputs(poll) == outputs(alone)
    assert all(outputs(poll)[(t, p)] for t in (VALIDATED, QUARANTINE, DLQ) for p in range(PARTS))
    assert poll.committed == alone.committed
    assert {p: poll.committed[TopicPartition(TOPIC, p)] for p in range(PARTS)} == dict.fromkeys(range(PARTS), PER)
    assert sorted(counts.batches) == sorted(counts_alone.batches)
    assert len(counts.batches) == PARTS
    partials, changes = stream_state(poll)
    assert (partials, changes) == stream_state(alone)
    assert sorted(partials) == list(range(PARTS)) and changes
    for p in range(PARTS):  # the repeat within the partition is a duplicate, the other partition's event is not
        rules = [dict(m.headers).get("qstreams.errors.rules", b"") for m in poll.records(QUARANTINE, p)]
        assert sum(b"event_id:unique" in r for r in rules) == 1
    late = [rec.partial.late for q in range(2) for m in poll.records(STATE, q)
            if isinstance(rec := decode(m.value or b""), Partial)]  # fmt: skip
    assert sum(late) >= PARTS  # cumulative snapshots: every partition's late record is in some window
