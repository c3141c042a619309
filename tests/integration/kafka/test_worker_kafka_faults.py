"""Hostile producers, outputs that do not fit, and topic faults against a real broker (issue 8 §3–§5)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from tests.integration.kafka.test_worker_kafka import (  # noqa: F401 (feature_stream: a fixture)
    Stream,
    check_routing,
    contract_for,
    dataset,
    feature_stream,
    make_worker,
    outputs,
    produce,
    read_topic,
    wait_committed,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_source_batches_are_consumed(codec: str, feature_stream: Callable[..., Stream]) -> None:  # noqa: F811
    stream = feature_stream(1)
    msgs, invalid, undecodable = dataset(300, seed=13)

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stream.bootstrap, compression_type=codec, linger_ms=20,
                                    max_request_size=4_000_000)  # fmt: skip
        await producer.start()
        try:
            await asyncio.gather(*[await producer.send(stream.topic, v, key=k, headers=h) for k, v, h in msgs])
        finally:
            await producer.stop()
        worker = make_worker(stream.settings)
        task = asyncio.create_task(worker.run())
        try:
            await wait_committed(stream.bootstrap, stream.group, stream.topic, timeout=60)
        finally:
            worker.stop()
            await task
        check_routing(await outputs(stream.bootstrap, stream.topic), msgs, invalid=invalid,
                      undecodable=undecodable, exact=True)  # fmt: skip

    asyncio.run(scenario())


# --- outputs that fit (issue 8 §3): the red team's three cases ---------------------------------------------------


def _feature(i: int, **changes: Any) -> bytes:
    from streams.testing import generate_feature_records

    r = dict(generate_feature_records(i + 1, seed=31).records[i])
    r.update(changes)
    return orjson.dumps(r)


def _mib(stream: Stream) -> Stream:
    """The stream with the worker's default record limit (1 MiB) instead of the tests' 50 kB."""
    return Stream(stream.bootstrap, stream.topic, stream.group,
                  stream.settings.model_copy(update={"max_message_bytes": 1_048_576}))  # fmt: skip


async def _run_until_committed(stream: Stream, msgs: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> Any:
    await produce(stream.bootstrap, stream.topic, msgs)
    worker = make_worker(stream.settings)
    task = asyncio.create_task(worker.run())
    try:
        await wait_committed(stream.bootstrap, stream.group, stream.topic, timeout=90)
        assert not task.done(), "the worker exited"
    finally:
        worker.stop()
        await task
    return worker


def test_outputs_over_the_broker_limit_end_as_references_and_events_are_cut(
    feature_stream: Callable[..., Stream],  # noqa: F811
) -> None:
    """A 1,048,300-byte invalid record on a 1 MiB broker; six 900 KB violations of a non-classified field."""
    stream = _mib(feature_stream(1))
    big = _feature(0, channel="web")
    big = big[:-1] + b', "pad": "' + b"x" * (1_048_300 - len(big) - 11) + b'"}'
    assert len(big) == 1_048_300
    wide = [_feature(i + 1, merchant_category_code=str(i) * 900_000) for i in range(6)]
    msgs = [(b"big", big, []), *[(f"wide-{i}".encode(), v, []) for i, v in enumerate(wide)]]

    async def scenario() -> None:
        await _run_until_committed(stream, msgs)
        out = await outputs(stream.bootstrap, stream.topic)
        [ref] = out["dlq"]
        body = orjson.loads(ref.value)
        assert (ref.key, body["reason"], body["offset"], body["output_topic"]) == (
            b"big", "too_large_for_output", 0, f"{stream.topic}.quarantine")  # fmt: skip
        assert body["limit"] == 1_048_588 and body["size"] > body["limit"]
        assert dict(ref.headers)["qstreams.errors.class"] == b"output.too_large_for_output"
        assert sorted(r.key for r in out["quarantine"]) == [f"wide-{i}".encode() for i in range(6)]
        events = await read_topic(stream.bootstrap, stream.settings.events_topic)
        kinds = [dict(e.headers).get("ce_type") for e in events]
        assert b"io.qualitystreams.rule.violation.v1" in kinds
        cut = [e for e in events if b"[truncated" in e.value]
        assert cut and all(len(e.value) < 1_048_588 for e in events)

    asyncio.run(scenario())


def test_a_copy_the_dlq_would_refuse_becomes_a_reference(
    feature_stream: Callable[..., Stream],  # noqa: F811
    kafka_topic_factory: Callable[..., str],
    tmp_path: Path,
) -> None:
    """A 1.5 MB record on a topic that allows 16 MB while the DLQ allows 1 MiB."""
    base = _mib(feature_stream(1))
    topic = kafka_topic_factory(1, prefix="big", config={"max.message.bytes": str(16 * 1_048_576)})
    (tmp_path / "big").mkdir()
    settings = base.settings.model_copy(update={"contracts_dir": contract_for(tmp_path / "big", topic)})
    stream = Stream(base.bootstrap, topic, base.group, settings)
    msgs = [(b"huge", _feature(0, pad="x" * 1_500_000), []), (b"fine", _feature(1), [])]

    async def scenario() -> None:
        await _run_until_committed(stream, msgs)
        out = await outputs(stream.bootstrap, stream.topic)
        [ref] = out["dlq"]
        body = orjson.loads(ref.value)
        assert (ref.key, body["reason"], body["output_topic"]) == (b"huge", "too_large_for_output", f"{topic}.dlq")
        assert dict(ref.headers)["qstreams.errors.original_class"] == b"decode.TOO_LARGE"
        assert [r.key for r in out["validated"]] == [b"fine"]

    asyncio.run(scenario())


# --- faults end bounded (issue 8 §5) -------------------------------------------------------------------------


def test_an_authentication_error_is_reported_as_such_on_health(feature_stream: Callable[..., Stream]) -> None:  # noqa: F811
    """SASL against the broker's PLAINTEXT listener: the broker refuses the handshake; not "unreachable"."""
    stream = feature_stream(1)
    settings = stream.settings.model_copy(update={
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "u",
        "sasl_password": SecretStr("p"),
    })  # fmt: skip
    worker = make_worker(settings)

    async def scenario() -> None:
        task = asyncio.create_task(worker.run())
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while not any("authentication failed" in p for p in worker.health.problems().values()):
                assert asyncio.get_running_loop().time() < deadline, worker.health.problems()
                await asyncio.sleep(0.2)
        finally:
            worker.stop()
            await asyncio.wait_for(task, 30)
        status, body = worker.health.report()
        assert status == 503 and "unreachable" not in body["problems"][stream.topic]

    asyncio.run(scenario())


def _admin(bootstrap: str) -> Any:
    from kafka.admin import KafkaAdminClient  # type: ignore[import-untyped,unused-ignore]

    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tests-faults")


def test_new_source_partitions_are_consumed_within_the_check_interval(
    feature_stream: Callable[..., Stream],  # noqa: F811
) -> None:
    """aiokafka refreshes metadata every 5 minutes by default: partitions added meanwhile were not consumed."""
    from kafka.admin import NewPartitions  # type: ignore[import-untyped,unused-ignore]

    stream = feature_stream(1)  # topic_check_interval_s=1
    msgs, _, _ = dataset(200, seed=17)

    async def scenario() -> None:
        await produce(stream.bootstrap, stream.topic, msgs[:100])
        worker = make_worker(stream.settings)
        task = asyncio.create_task(worker.run())
        try:
            await wait_committed(stream.bootstrap, stream.group, stream.topic, timeout=60)
            admin = _admin(stream.bootstrap)
            try:
                admin.create_partitions({stream.topic: NewPartitions(total_count=3)})
            finally:
                admin.close()
            producer = AIOKafkaProducer(bootstrap_servers=stream.bootstrap, max_request_size=4_000_000)
            await producer.start()
            try:
                await producer.client.force_metadata_update()
                for k, v, h in msgs[100:]:
                    await (await producer.send(stream.topic, v, key=k, headers=h, partition=2))
            finally:
                await producer.stop()
            started = time.monotonic()
            await wait_committed(stream.bootstrap, stream.group, stream.topic, timeout=30)
            print(f"\nnew partition consumed {time.monotonic() - started:.1f} s after its records were written")
            assert not task.done()
        finally:
            worker.stop()
            await task

    asyncio.run(scenario())


def test_a_deleted_output_topic_is_recreated_without_a_crash(feature_stream: Callable[..., Stream]) -> None:  # noqa: F811
    stream = feature_stream(3)
    msgs, _, _ = dataset(600, seed=19)
    validated = f"{stream.topic}.validated"

    async def scenario() -> None:
        await produce(stream.bootstrap, stream.topic, msgs[:300])
        worker = make_worker(stream.settings)
        task = asyncio.create_task(worker.run())
        try:
            await wait_committed(stream.bootstrap, stream.group, stream.topic, timeout=60)
            admin = _admin(stream.bootstrap)
            try:
                admin.delete_topics([validated])
            finally:
                admin.close()
            await asyncio.sleep(2.0)
            await produce(stream.bootstrap, stream.topic, msgs[300:])
            await wait_committed(stream.bootstrap, stream.group, stream.topic, timeout=90)
            assert not task.done(), "the worker exited"
        finally:
            worker.stop()
            await task
        out = await outputs(stream.bootstrap, stream.topic)
        later = {k for k, _, _ in msgs[300:]}
        routed = {r.key for kind in out.values() for r in kind}
        assert later <= routed, f"{len(later - routed)} records written after the deletion are in no output"

    asyncio.run(scenario())


def test_a_partition_whose_fetch_keeps_failing_fails_health_with_its_cause(
    feature_stream: Callable[..., Stream],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The red team's lz4 batch with the codec library missing: UnsupportedCodecError every poll, /health 200."""
    import aiokafka.codec

    stream = feature_stream(1)
    msgs, _, _ = dataset(50, seed=23)

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stream.bootstrap, compression_type="lz4", linger_ms=20)
        await producer.start()
        try:
            await asyncio.gather(*[await producer.send(stream.topic, v, key=k, headers=h) for k, v, h in msgs])
        finally:
            await producer.stop()
        monkeypatch.setattr(aiokafka.codec, "has_lz4", lambda: False)  # as on a machine without cramjam
        worker = make_worker(stream.settings)
        task = asyncio.create_task(worker.run())
        try:
            deadline = time.monotonic() + 30
            while "UnsupportedCodecError" not in str(worker.health.problems()):
                assert time.monotonic() < deadline, f"/health still says {worker.health.report()}"
                await asyncio.sleep(0.2)
            status, body = worker.health.report()
            assert status == 503 and "fetch failed" in body["problems"][stream.topic]
            await asyncio.sleep(2.5)  # probes (every 1 s) must not make it healthy again
            assert worker.health.report()[0] == 503
        finally:
            worker.stop()
            await task

    asyncio.run(scenario())


def test_an_events_topic_refusing_writes_pauses_consumption_without_duplicates(
    feature_stream: Callable[..., Stream],  # noqa: F811
) -> None:
    """The red team: 3,100 duplicate outputs from 100 inputs in 15 s while the events topic refused writes.

    The events topic refuses every record here by its own config (``message.timestamp.before.max.ms=0``:
    InvalidTimestamp, not retriable) until the test lifts it.
    """
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic  # type: ignore[import-untyped,unused-ignore]

    stream = feature_stream(1)
    events = stream.settings.events_topic
    msgs, invalid, undecodable = dataset(100, seed=29)
    admin = _admin(stream.bootstrap)
    admin.create_topics([NewTopic(events, 1, 1, topic_configs={"message.timestamp.before.max.ms": "0"})])

    async def scenario() -> None:
        await produce(stream.bootstrap, stream.topic, msgs)
        worker = make_worker(stream.settings)
        task = asyncio.create_task(worker.run())
        try:
            await asyncio.sleep(6.0)
            assert not await read_topic(stream.bootstrap, events), "the events topic accepted writes: proves nothing"
            before = await outputs(stream.bootstrap, stream.topic)
            lifted = {"message.timestamp.before.max.ms": str(2**63 - 1)}
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, events, configs=lifted)])
            await wait_committed(stream.bootstrap, stream.group, stream.topic, timeout=60)
            delivered = await read_topic(stream.bootstrap, events)
        finally:
            worker.stop()
            await task
            with contextlib.suppress(Exception):
                admin.delete_topics([events])
            admin.close()
        written = sum(len(v) for v in before.values())
        assert written <= len(msgs), f"{written - len(msgs)} duplicate outputs while the events topic refused writes"
        check_routing(await outputs(stream.bootstrap, stream.topic), msgs, invalid=invalid, undecodable=undecodable,
                      exact=True)  # fmt: skip
        assert any(dict(e.headers).get("ce_type", b"").endswith(b"batch.summary.v1") for e in delivered)

    asyncio.run(scenario())
