"""A contract edited without a new version (another text, another sha256, the same version) during a rolling
restart: each text's records are counted in a verdict judged by that text, none is lost.

Partials were told apart by contract version only. A worker on the edited text restored the old text's partial of
its partition's open window as its own and merged its batch into it: the merge refused two texts, the batch failed
(its records isolated, one by one, and failed again), and the window's verdict held the old text's records only. A
merger meeting two texts' partials of one window (one per partition) failed its tick on every tick: no window of
the stream was published again. The compaction key of a partial did not name the text either: the edited text's
partial of a (window, partition) replaced the old one's, whose records a restarted merger then never counted.
Now a partial's text is part of its identity everywhere (restore, compaction key, merger), as its version is:
one verdict per (window, version, text), each judged by its own text (the text every worker writes to the
internal topic, :mod:`streams.windows.versions`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from streams.contracts.loader import parse_contract
from streams.kafka.transport import TopicPartition
from streams.testing.transport import InMemoryTransport
from streams.windows.codec import Partial, decode, record_key
from streams.windows.finalize import WindowVerdict
from streams.windows.topics import state_topic

from .helpers import CONTRACT
from .test_upgrade_mid_window import APP, TOPIC, V1, _random_stream, cluster, member, produce, summaries, write

# the same version, asking for 3 rows a window instead of 4: a window of 3 records fails V1 and passes EDITED
EDITED = parse_contract(CONTRACT.replace("OrEqualTo: 4", "OrEqualTo: 3"), path="orders.yaml")


def _live_partials(transport: InMemoryTransport) -> dict[bytes, Partial]:
    live: dict[bytes, bytes | None] = {}
    for m in transport.records(state_topic(APP)):
        live[m.key or b""] = m.value
    return {k: rec for k, v in live.items() if v is not None and isinstance(rec := decode(v), Partial)}


def test_the_texts_differ_and_the_version_does_not() -> None:
    assert EDITED.version == V1.version and EDITED.sha256 != V1.sha256


def test_a_restart_on_an_edited_text_mid_window_counts_every_record_under_its_own_text() -> None:
    async def scenario() -> tuple[list[WindowVerdict], InMemoryTransport, list[int]]:
        transport = cluster()
        now = int(datetime.now(UTC).timestamp() * 1000)
        b1, o1 = await member(transport, "w1", V1, {0})
        messages = produce(transport, 6)
        await write(transport, b1, messages[:3], "w1")
        o1.on_commit(TopicPartition(TOPIC, 0), messages[2].offset + 1, 0.0)
        b2, o2 = await member(transport, "w2", EDITED, {0})  # restarted on the edited text mid-window
        result = b2.process(messages[3:], worker_id="w2")
        valid = [result.counts.get("valid", 0), len(result.dead_lettered)]
        for record in result.events:
            await transport.send(record)
        o2.on_commit(TopicPartition(TOPIC, 0), messages[-1].offset + 1, 0.0)
        keys = _live_partials(transport)
        assert len(keys) == 2  # one record per text: neither compacted away by the other
        return await o2.tick(now + 20_000), transport, valid

    verdicts, transport, valid = asyncio.run(scenario())
    assert valid == [3, 0]  # the edited text's batch was judged (it failed whole before)
    got = [(v.key.contract_version, v.contract_sha256, v.records, v.unjudged) for v in verdicts]
    assert sorted(got) == sorted([("1.2.0", V1.sha256, 3, None), ("1.2.0", EDITED.sha256, 3, None)])
    by_text = {v.contract_sha256: v.check("enough_rows").result.passed for v in verdicts}
    assert by_text == {V1.sha256: False, EDITED.sha256: True}  # each by its own rules
    published = sorted((s["contract"]["sha256"], s["records"], s["passed"]) for s in summaries(transport))
    assert published == sorted([(V1.sha256, 3, False), (EDITED.sha256, 3, True)])
    assert _live_partials(transport) == {}  # both tombstoned with the close


@pytest.mark.parametrize("merger_text", ["old", "edited"])
def test_two_partitions_on_two_texts_publish_a_verdict_per_text(merger_text: str) -> None:
    """A rolling restart: partition 0 (and the merger) on one text, partition 1 on the other."""
    first, second = (V1, EDITED) if merger_text == "old" else (EDITED, V1)

    async def scenario() -> list[WindowVerdict]:
        transport = cluster(2)
        now = int(datetime.now(UTC).timestamp() * 1000)
        b0, o0 = await member(transport, "w0", first, {0})
        b1, o1 = await member(transport, "w1", second, {1})
        for b, o, p, n in ((b0, o0, 0, 2), (b1, o1, 1, 3)):
            messages = produce(transport, n, partition=p)
            await write(transport, b, messages, o.worker_id)
            o.on_commit(TopicPartition(TOPIC, p), messages[-1].offset + 1, 0.0)
        first_tick = await o0.tick(now + 20_000)  # failed with a ValueError (tick after tick) before
        assert await o0.tick(now + 40_000) == []  # published once
        return first_tick

    verdicts = asyncio.run(scenario())
    got = sorted((v.contract_sha256, v.records, v.unjudged) for v in verdicts)
    assert got == sorted([(first.sha256, 2, None), (second.sha256, 3, None)])


def test_a_partials_compaction_key_names_its_text() -> None:
    from streams.windows.partial import WindowKey, empty

    key = WindowKey(V1.id, V1.version, "orders", TOPIC, 0, 10_000)
    assert record_key(Partial(0, empty(key, V1.sha256))) != record_key(Partial(0, empty(key, EDITED.sha256)))
    assert record_key(Partial(0, empty(key, V1.sha256))) == record_key(Partial(0, empty(key, V1.sha256)))


@pytest.mark.parametrize("seed", range(30))
def test_every_record_is_counted_once_across_a_random_edit_without_a_new_version(seed: int) -> None:
    total, verdicts, processed_by = asyncio.run(_random_stream(seed, new=EDITED))
    slots = [(v.key, v.contract_sha256) for v in verdicts]
    assert len(slots) == len(set(slots))  # one verdict per (window, version, text)
    assert sum(v.records + v.late for v in verdicts) == total
    assert all(v.unjudged is None for v in verdicts)
    assert {v.contract_sha256 for v in verdicts} <= processed_by
