"""``qstreams policies run``: the :class:`~streams.policies.agent.PolicyAgent` on a Kafka cluster.

One session:

1. create what is missing: the state and control topics (compacted, one partition), the command
   topic and the quality-event topic;
2. start a **transactional** producer (``transactional_id`` = ``<app_id>-<agent_id>``): starting
   it fences a previous instance of the same agent and aborts its open transaction;
3. restore the agent from the state topic, read ``read_committed`` to its end;
4. assign every partition of the quality-event and command topics (no consumer group: the offsets
   live in the state topic) and seek to the restored offsets;
5. per poll: feed every record to the agent and produce its outputs **and** its changed state
   records in one transaction; then deliver the due webhooks and record their outcome (a second
   transaction).

When a policy watches ``lag.*``, every ``lag_interval_s`` the session measures the workers' consumer lag
(:func:`streams.policies.lag.probe_offsets`, kafka-python, **in a thread**: the loop goes on polling); the
first poll after the measurement is done feeds it to the agent (its decisions ride that poll's transaction). A
measurement that fails is logged and skipped (that interval is not observed); it never ends the session.

A Kafka error ends the session; the agent is then rebuilt from the state topic (what was
committed) after a backoff, so its memory never runs ahead of what Kafka holds. Run one agent per
``agent_id``: a second one with the same id fences the first, which then stops with a
:class:`~streams.errors.SettingsError` (before, it started a new session, fenced the second back, and the two
took turns for good). A fenced transaction open longer than its timeout may have been aborted by the coordinator
for that (a long outage): that one ends the session only, as any Kafka error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from streams.contracts.model import Contract
from streams.errors import SettingsError
from streams.kafka.connection import client_config
from streams.kafka.readers import COMPACTED, partitions_of, read_all, reader_consumer
from streams.kafka.sessions import run_sessions
from streams.kafka.topics import create_topics
from streams.pipeline.records import Message, OutRecord
from streams.policies.actions import deliver, payload
from streams.policies.agent import PolicyAgent
from streams.policies.config import PolicySettings
from streams.policies.lag import PartitionOffsets, consumer_lag, probe_offsets
from streams.policies.telemetry import PolicyMetrics
from streams.settings import Settings

# COMPACTED, partitions_of and reader_consumer live in streams.kafka.readers; re-exported for the CLI
__all__ = ["COMPACTED", "ensure_policy_topics", "partitions_of", "reader_consumer", "run_agent"]

log = logging.getLogger(__name__)

TRANSACTION_TIMEOUT_MS = 60_000  # the coordinator aborts (and fences) a transaction open longer than that


async def ensure_policy_topics(settings: Settings, ps: PolicySettings) -> None:
    """Create the agent's topics the cluster lacks (nothing when ``STREAMS_CREATE_TOPICS=false``)."""
    if not settings.create_topics:
        return
    await asyncio.to_thread(create_topics, settings, [ps.state_topic, ps.control_topic], partitions=1,
                            configs=COMPACTED)  # fmt: skip
    await asyncio.to_thread(create_topics, settings, [ps.command_topic, settings.events_topic])


class _Session:
    def __init__(self, settings: Settings, ps: PolicySettings, contracts: Sequence[Contract],
                 metrics: PolicyMetrics) -> None:  # fmt: skip
        self.settings, self.ps = settings, ps
        self.agent = PolicyAgent(contracts, ps, settings.events_topic, metrics=metrics,
                                 max_skew_s=settings.max_clock_skew_seconds)  # fmt: skip
        self.producer: Any = None
        self.consumer: Any = None
        self.probe: Callable[..., list[PartitionOffsets]] = probe_offsets  # replaceable in tests
        self.monotonic: Callable[[], float] = time.monotonic  # likewise
        self._lag_task: asyncio.Future[list[PartitionOffsets]] | None = None
        self._lag_window = (0.0, 0.0)  # wall-clock [start, end) of the measurement under way
        self._lag_from: float | None = None  # where the next interval starts (None: not started)

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer, TopicPartition

        s, ps = self.settings, self.ps
        self.producer = AIOKafkaProducer(
            **client_config(s, "aiokafka"), client_id=f"{s.app_id}-{ps.agent_id}", acks="all",
            enable_idempotence=True, transactional_id=f"{s.app_id}-{ps.agent_id}",
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
        )  # fmt: skip
        await self.producer.start()  # fences the predecessor: its open transaction is aborted
        reader = reader_consumer(s, f"{s.app_id}-{ps.agent_id}-restore")
        await reader.start()
        try:
            state = await read_all(reader, ps.state_topic)
            control = await read_all(reader, ps.control_topic)
        finally:
            await reader.stop()
        self.agent.restore(state)
        await self.produce(self.agent.reconcile(control))  # quarantines no open incident holds any more
        log.info("policy agent %s restored: %d state records, offsets %s, %d open incident(s), %d delivery(ies) "
                 "pending", ps.agent_id, len(state), self.agent.offsets, len(self.agent.book.open_incidents()),
                 len(self.agent.outbox))  # fmt: skip
        self.consumer = reader_consumer(s, f"{s.app_id}-{ps.agent_id}")
        await self.consumer.start()
        tps = [TopicPartition(t, p) for t in (s.events_topic, ps.command_topic)
               for p in await partitions_of(self.consumer, t)]  # fmt: skip
        self.consumer.assign(tps)
        ends = await self.consumer.end_offsets(tps) if tps else {}
        for tp in tps:
            offset = self.agent.offsets.get((tp.topic, tp.partition))
            if offset is not None and offset > ends[tp]:
                # the stored offset is the old topic's: seeking there, the consumer reads the new one from its start and
                # the agent took every record below it for one consumed before the restart (silently never judged)
                log.warning("%s[%d] ends at offset %d, before the stored offset %d: the topic was recreated or "
                            "truncated; reading it from its start", tp.topic, tp.partition, ends[tp],
                            offset)  # fmt: skip
                self.agent.rewind(tp.topic, tp.partition)
                offset = None
            if offset is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)

    async def produce(self, records: list[OutRecord]) -> None:
        records = records + self.agent.state_records(self.ps.state_topic)
        if not records:
            return
        from aiokafka.errors import ProducerFenced

        began = self.monotonic()
        try:
            async with self.producer.transaction():
                for r in records:
                    await self.producer.send(r.topic, value=r.value, key=r.key, headers=list(r.headers),
                                             partition=r.partition)  # fmt: skip
        except ProducerFenced as exc:
            if self.monotonic() - began >= TRANSACTION_TIMEOUT_MS / 1000:
                raise  # the coordinator may have aborted it on its timeout (a long outage): a new session recovers
            # younger than its timeout: another instance of this agent started and fenced ours. Restarting would fence
            # it back, and the two would take turns for good; the older one stops (a fenced producer is fatal)
            s, ps = self.settings, self.ps
            raise SettingsError(
                f"Policy agent {ps.agent_id!r} was fenced: another agent with STREAMS_APP_ID={s.app_id!r} and "
                f"STREAMS_POLICY_AGENT_ID={ps.agent_id!r} started (run one agent per agent id; give a second one "
                f"another STREAMS_POLICY_AGENT_ID). This one stops; the other carries on from the committed state "
                f"({type(exc).__name__})."
            ) from exc

    async def step(self) -> None:
        batches = await self.consumer.getmany(timeout_ms=self.ps.poll_timeout_ms, max_records=2000)
        out: list[OutRecord] = []
        for tp, records in sorted(batches.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
            for r in records:
                out += self.agent.handle(
                    Message(tp.topic, tp.partition, r.offset, r.value, r.key, tuple(r.headers or ()), r.timestamp)
                )
        out += self.lag()
        await self.produce(out)
        due = self.agent.due()
        if due:
            ps = self.ps
            results = await asyncio.gather(*(
                deliver(hook, payload(alert, hook), timeout_s=ps.webhook_timeout_s, retries=ps.webhook_retries,
                        backoff_s=ps.webhook_backoff_s)
                for _, hook, alert in due
            ))  # fmt: skip
            done = [r for (did, _, alert), res in zip(due, results, strict=True)
                    for r in self.agent.delivered(did, alert, res)]  # fmt: skip
            await self.produce(done)

    def lag(self) -> list[OutRecord]:
        """Feed a finished lag measurement to the agent; start the next one when its interval is over."""
        topics = self.agent.lag_topics()
        if not topics:
            return []
        now, out = self.agent.now(), []
        task = self._lag_task
        if task is not None and task.done():
            self._lag_task = None
            start, end = self._lag_window
            try:
                lags = consumer_lag(task.result(), int(end * 1000))
            except Exception as exc:  # the cluster did not answer: that interval is not observed
                log.warning("consumer lag of group %s not measured, interval skipped: %s: %s", self._lag_group,
                            type(exc).__name__, str(exc)[:300])  # fmt: skip
            else:
                out = self.agent.observe_lag(lags, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        if self._lag_from is None:
            self._lag_from = now  # the first interval starts with the session (none overlaps a previous one)
        if self._lag_task is None and now >= self._lag_from + self.ps.lag_interval_s:
            self._lag_window, self._lag_from = (self._lag_from, now), now
            self._lag_task = asyncio.ensure_future(asyncio.to_thread(
                self.probe, self.settings, self._lag_group, topics, now_ms=int(now * 1000)
            ))  # fmt: skip
        return out

    @property
    def _lag_group(self) -> str:
        return self.ps.lag_group or self.settings.app_id

    async def close(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()  # the thread ends by itself (its clients time out and close)
        for client in (self.consumer, self.producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()


async def run_agent(
    settings: Settings, ps: PolicySettings, contracts: Sequence[Contract], *, stop: asyncio.Event,
    metrics: PolicyMetrics | None = None, on_ready: Callable[[PolicyAgent], None] | None = None,
) -> None:  # fmt: skip
    """Run the agent until ``stop`` is set; a failed session is rebuilt from the state topic after a backoff."""
    metrics = metrics or PolicyMetrics()
    ready = None if on_ready is None else (lambda session: on_ready(session.agent))
    await run_sessions(
        lambda: _Session(settings, ps, contracts, metrics),
        stop=stop, name="policy agent", prepare=lambda: ensure_policy_topics(settings, ps), on_ready=ready,
    )  # fmt: skip
