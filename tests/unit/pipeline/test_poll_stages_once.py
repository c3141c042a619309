"""Under stream time a poll's stages run once per poll (``WindowsStage.amend_poll``), not once per partition batch.

The stage's fixed cost (conforming the rows, the stream-time bookkeeping) was paid again for every partition
batch of a poll. Accounted in one call, each batch must still get what it gets processed alone, one by one in
the poll's order: here with uniqueness tombstones waiting from the tick's expiry (one by one, the first batch
takes those of every partition), besides what ``test_poll_stream_time`` draws.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from streams.pipeline.binding import Binding
from streams.pipeline.records import BatchResult, Message
from streams.settings import Mode, Settings
from streams.windows.topics import CHANGELOG_SUFFIX, parse_changelog_key
from streams.windows.worker import WindowsStage

from .test_poll_stream_time import T0, TOPIC, contract, frozen_clock, seen, stamp, state

HORIZON_S = 60  # claims older than this (behind the newest) expire


def binding() -> Binding:
    c = contract()
    s = Settings(mode=Mode.GATE, web_port=0, max_clock_skew_seconds=10**9, unique_horizon_seconds=HORIZON_S)
    b = Binding(c, c.schema(), s)
    b.stages.append(WindowsStage(c, c.schema(), s))
    return b


def poll(first_id: int, at_ms: int, offset: int) -> list[list[Message]]:
    """Two records on each of partitions 1 and 0 (in that order), with ids from ``first_id`` at ``at_ms``."""
    batches = []
    for k, p in enumerate((1, 0)):
        rows = [{"id": first_id + 2 * k + i, "event_ts": stamp(at_ms), "amount": 1.0, "country": "DE",
                 "code": "a", "ref": None} for i in range(2)]  # fmt: skip
        batches.append([Message(TOPIC, p, offset + i, orjson.dumps(r), b"k", (), at_ms) for i, r in enumerate(rows)])
    return batches


def tombstones(result: BatchResult) -> list[int]:
    """The source partitions of the uniqueness tombstones a batch carries."""
    out = []
    for e in result.events:
        if e.topic.endswith(CHANGELOG_SUFFIX) and e.value is None:
            parsed = parse_changelog_key(e.key or b"")
            assert parsed is not None
            out.append(parsed[0][4])
    return sorted(out)


def test_a_polls_stage_runs_once_and_each_batch_gets_what_it_gets_alone() -> None:
    together, alone = binding(), binding()
    calls: list[int] = []
    stream = together.stages[0].stream  # type: ignore[attr-defined]
    process = stream.process

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return process(*args, **kwargs)

    stream.process = counted
    polls = [poll(1, T0, 0), poll(10, T0 + 65_000, 2), poll(20, T0 + 66_000, 4)]
    split: list[BatchResult] = []
    one_by_one: list[BatchResult] = []
    with frozen_clock():
        for k, batches in enumerate(polls):
            if k == 2:  # the tick's expiry: the second poll's claims are past the horizon, on both partitions
                # (a batch drops the claims its own records' clock expires, the first poll's here: the tick drops
                # those of a clock that moved without a batch, as a restore from a newer heartbeat does)
                for b in (together, alone):
                    for st in b.stages[0].stream.states.values():  # type: ignore[attr-defined]
                        st.clock = replace(st.clock, max_event_ms=T0 + 130_000)
                dropped = [b.stages[0].stream.expire() for b in (together, alone)]  # type: ignore[attr-defined]
                assert dropped == [4, 4]
            split += together.process_poll(batches, worker_id="w")
            one_by_one += [alone.process(b, worker_id="w") for b in batches]
    assert calls == [1, 1, 1]  # once per poll
    for s, o in zip(split, one_by_one, strict=True):
        assert seen(s) == seen(o)
    assert state(together) == state(alone)
    assert tombstones(split[4]) == [0, 1] and tombstones(split[5]) == []  # both partitions' ride with the first
    assert [r.counts["valid"] for r in split] == [2] * 6
