"""Every ``window.summary`` of a window names every contract text the window is published for (``contract_versions``):
after an upgrade mid-window (or an edited text in a rolling restart) a window gets one summary per text, and the
policy agent pools them into one observation once it has them all (``docs/policies.md``, "Contract versions")."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from streams.events.codec import from_kafka, validate_event
from streams.kafka.transport import TopicPartition
from streams.testing.transport import InMemoryTransport
from streams.windows.merger import window_texts
from streams.windows.partial import WindowKey, WindowPartial, empty

from .helpers import T0, WINDOW_MS
from .test_edited_same_version import EDITED
from .test_upgrade_mid_window import EVENTS, TOPIC, V1, V2, cluster, member, produce, summaries, write


def test_each_summary_of_an_upgraded_window_names_every_text_of_the_window() -> None:
    """Window 0: three records by 1.2.0 and three by 1.3.0 (the restart); window 1: 1.3.0's only."""

    async def scenario() -> InMemoryTransport:
        transport = cluster()
        now = int(datetime.now(UTC).timestamp() * 1000)
        b1, o1 = await member(transport, "w1", V1, {0})
        messages = produce(transport, 6)
        await write(transport, b1, messages[:3], "w1")
        o1.on_commit(TopicPartition(TOPIC, 0), messages[2].offset + 1, 0.0)
        b2, o2 = await member(transport, "w2", V2, {0})
        later = produce(transport, 2, at_ms=WINDOW_MS + 1_000)  # the next window: 1.3.0's records only
        await write(transport, b2, messages[3:] + later, "w2")
        o2.on_commit(TopicPartition(TOPIC, 0), later[-1].offset + 1, 0.0)
        await o2.tick(now + 20_000)
        return transport

    transport = asyncio.run(scenario())
    got = sorted((s["window"]["start"], s["contract"]["version"], s["records"],
                  [(v["version"], v["sha256"]) for v in s["contract_versions"]])
                 for s in summaries(transport))  # fmt: skip
    both = [("1.2.0", V1.sha256), ("1.3.0", V2.sha256)]
    start0, start1 = (datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
                      for ms in (T0, T0 + WINDOW_MS))  # fmt: skip
    assert got == [
        (start0, "1.2.0", 3, both), (start0, "1.3.0", 3, both), (start1, "1.3.0", 2, [("1.3.0", V2.sha256)]),
    ]  # fmt: skip
    events = [from_kafka(m.key, m.value, m.headers) for m in transport.records(EVENTS)]
    for e in events:  # every event published validates against its schema (the list included)
        validate_event(e)
    ids = [e.get_id() for e in events]
    assert len(ids) == len(set(ids))  # one id per (text, window): the list changes no id


def test_the_texts_of_a_window_are_the_versions_and_sha256s_due_together() -> None:
    def partial(version: str, sha: str, start: int) -> WindowPartial:
        return empty(WindowKey("urn:test:orders", version, "orders", TOPIC, start, start + WINDOW_MS), sha)

    due = [partial("1.2.0", V1.sha256, T0), partial("1.2.0", EDITED.sha256, T0), partial("1.2.0", V1.sha256, T0),
           partial("1.2.0", V1.sha256, T0 + WINDOW_MS)]  # fmt: skip
    texts = window_texts(due)
    assert texts == {
        (T0, T0 + WINDOW_MS): tuple(sorted([("1.2.0", V1.sha256), ("1.2.0", EDITED.sha256)])),
        (T0 + WINDOW_MS, T0 + 2 * WINDOW_MS): (("1.2.0", V1.sha256),),
    }
