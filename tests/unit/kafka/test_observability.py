"""Metrics, health, logs and lifecycle events of the worker, and its pure helpers (no broker needed)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from streams.contracts.loader import load_contract
from streams.errors import SettingsError
from streams.kafka.aiokafka_transport import to_messages
from streams.kafka.connection import backoff, client_config, consumer_config, producer_config
from streams.kafka.topics import output_topics
from streams.observability import Health, JsonFormatter, Lifecycle, Metrics, RateLimitFilter, log_extra
from streams.pipeline.deadletter import internal_dead_letters
from streams.pipeline.records import Message
from streams.settings import Mode, SecurityProtocol, Settings

CONTRACT = Path(__file__).resolve().parents[3] / "contracts" / "card_transactions.odcs.yaml"
TOPIC = "features.card-transactions.v1"
#: every label a quality-streams metric may carry: all bounded (no record ids, no values)
ALLOWED_LABELS = {"contract", "topic", "outcome", "rule", "severity", "partition", "version", "sha256", "stage", "le"}


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def observe(metrics: Metrics, **over: Any) -> None:
    args: dict[str, Any] = {
        "contract_id": "urn:c", "topic": TOPIC, "messages": 100, "counts": {"valid": 97, "quarantined": 2,
        "dead_lettered": 1}, "rule_failures": {"amount_max": 2, "email": 5}, "severities": {"email": "warning"},
        "decode_seconds": 0.004, "validate_seconds": 0.002,
    }  # fmt: skip
    metrics.observe_batch(**(args | over))


def test_metrics_count_records_rules_and_batches_in_base_units() -> None:
    metrics = Metrics()
    metrics.bind("urn:c", "1.4.0", "ab" * 32, TOPIC)
    observe(metrics)
    observe(metrics)
    metrics.set_lag(TOPIC, 2, 17)
    got = samples(metrics)
    assert got[("qstreams_records_total", (("contract", "urn:c"), ("outcome", "valid"), ("topic", TOPIC)))] == 194
    assert got[("qstreams_records_total", (("contract", "urn:c"), ("outcome", "dead_lettered"), ("topic", TOPIC)))] == 2
    rule = ("qstreams_rule_failures_total", (("contract", "urn:c"), ("rule", "email"), ("severity", "warning")))
    assert got[rule] == 10
    assert got[("qstreams_rule_failures_total", (("contract", "urn:c"), ("rule", "amount_max"), ("severity", "error")))]
    assert got[("qstreams_validation_seconds_count", (("topic", TOPIC),))] == 2
    assert got[("qstreams_decode_seconds_sum", (("topic", TOPIC),))] == pytest.approx(0.008)
    assert got[("qstreams_batch_records_sum", (("topic", TOPIC),))] == 200
    assert got[("qstreams_consumer_lag", (("partition", "2"), ("topic", TOPIC)))] == 17
    info = (("contract", "urn:c"), ("sha256", "ab" * 32), ("topic", TOPIC), ("version", "1.4.0"))
    assert got[("qstreams_contract_info", info)] == 1
    assert got[("qstreams_binding_up", (("topic", TOPIC),))] == 0
    metrics.forget_partition(TOPIC, 2)
    assert ("qstreams_consumer_lag", (("partition", "2"), ("topic", TOPIC))) not in samples(metrics)


def test_metrics_labels_are_bounded_and_registries_separate() -> None:
    first, second = Metrics(), Metrics()
    first.bind("urn:c", "1", "00", TOPIC)
    observe(first)
    assert not any(name.startswith("qstreams_") for name, _ in samples(second) if _)  # nothing leaked across
    labels = {k for _, pairs in samples(first) for k, _ in pairs}
    assert labels <= ALLOWED_LABELS


def test_health_names_the_binding_that_stopped_polling() -> None:
    health = Health(max_age=30.0)
    health.register(["a", "b"])
    assert health.report(now=0.0)[0] == 503  # registered, not started
    health.ok("a")
    health.ok("b")
    health.polled(["a", "b"], now=100.0)
    assert health.report(now=120.0) == (200, {"status": "ok", "bindings": ["a", "b"], "problems": {}})
    health.polled(["a"], now=140.0)
    status, body = health.report(now=150.0)
    assert status == 503 and list(body["problems"]) == ["b"] and "no poll for 50 s" in body["problems"]["b"]
    health.fail("a", "source topic missing")
    assert health.report(now=150.0)[1]["problems"]["a"] == "source topic missing"


def test_log_extra_and_formatters() -> None:
    assert log_extra("t", 3, 42) == {"topic": "t", "partition": 3, "offset": 42}
    assert log_extra("t", contract="urn:c") == {"topic": "t", "contract": "urn:c"}
    record = logging.LogRecord("streams.kafka.worker", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
    for k, v in log_extra("t", 3, 42).items():
        setattr(record, k, v)
    line = json.loads(JsonFormatter().format(record))
    assert line | {"time": None} == {
        "time": None, "level": "ERROR", "logger": "streams.kafka.worker", "message": "failed x",
        "topic": "t", "partition": 3, "offset": 42,
    }  # fmt: skip


def test_kafka_client_noise_is_rate_limited() -> None:
    limit = RateLimitFilter(every=60.0)

    def rec(name: str, msg: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, None)

    assert limit.filter(rec("aiokafka", "Unable connect to node %s"))
    assert not limit.filter(rec("aiokafka", "Unable connect to node %s"))
    assert limit.filter(rec("aiokafka.consumer.fetcher", "Unable connect to node %s"))
    assert all(limit.filter(rec("streams.kafka.worker", "broker unreachable")) for _ in range(3))


def test_lifecycle_events_name_contracts_and_never_raise(caplog: pytest.LogCaptureFixture) -> None:
    contract = load_contract(CONTRACT)
    lifecycle = Lifecycle(Settings(events_topic="ev"), "w1", {TOPIC: contract, "other": contract})
    sent: list[tuple[str, bytes, Any]] = []

    async def send(topic: str, value: bytes, key: bytes | None = None, headers: Any = None) -> asyncio.Future[Any]:
        sent.append((topic, value, dict(headers)))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def fail(*_: Any, **__: Any) -> None:
        raise OSError("broker away")

    async def scenario() -> None:
        await lifecycle.emit("started")  # no producer yet: logged only
        lifecycle.send = send
        lifecycle.generation = 3
        await lifecycle.emit("partitions_assigned", partitions=[(TOPIC, 1), (TOPIC, 0)], wait=True)
        await lifecycle.emit("binding_failed", topics=[TOPIC], reason="source topic missing")
        lifecycle.send = fail
        await lifecycle.emit("stopped")

    asyncio.run(scenario())
    assigned, failed = (orjson.loads(v) for _, v, _ in sent)
    assert [t for t, _, _ in sent] == ["ev", "ev"]
    assert assigned["phase"] == "partitions_assigned" and assigned["generation"] == 3
    assert assigned["partitions"] == [{"topic": TOPIC, "partition": 0}, {"topic": TOPIC, "partition": 1}]
    assert [c["version"] for c in assigned["contracts"]] == ["1.4.0"]
    assert failed["reason"] == "source topic missing" and sent[1][2]["ce_severity"] == b"error"
    assert "could not emit the stopped lifecycle event" in caplog.text


def test_web_server_serves_metrics_and_health() -> None:
    from aiohttp import ClientSession

    from streams.kafka.worker import start_web

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    metrics, health = Metrics(), Health(max_age=30.0)
    metrics.bind("urn:c", "1", "00", TOPIC)
    health.register([TOPIC])

    async def scenario() -> None:
        runner = await start_web(Settings(web_port=port), metrics, health)
        assert runner is not None
        try:
            async with ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/health") as r:
                    assert r.status == 503 and TOPIC in (await r.json())["problems"]
                health.ok(TOPIC)
                health.polled([TOPIC])
                async with http.get(f"http://127.0.0.1:{port}/health") as r:
                    assert r.status == 200
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    assert r.status == 200 and "qstreams_contract_info" in await r.text()
                    assert r.headers["Content-Type"].startswith("text/plain")
        finally:
            await runner.cleanup()
        assert await start_web(Settings(web_port=0), metrics, health) is None

    asyncio.run(scenario())


# --- admin and worker helpers ------------------------------------------------------------------------


def test_client_config_maps_security_for_both_clients() -> None:
    plain = Settings(bootstrap_servers="b1:9092,b2:9092")
    assert client_config(plain, "kafka-python") == {
        "bootstrap_servers": "b1:9092,b2:9092",
        "security_protocol": "PLAINTEXT",
    }
    sasl = Settings(
        security_protocol=SecurityProtocol.SASL_SSL,
        sasl_mechanism="scram-sha-512",
        sasl_username="u",
        sasl_password=SecretStr("s3cr3t-pw"),
    )
    kp, ak = client_config(sasl, "kafka-python"), client_config(sasl, "aiokafka")
    assert kp["sasl_mechanism"] == ak["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kp["sasl_plain_password"] == ak["sasl_plain_password"] == "s3cr3t-pw"
    assert "ssl_cafile" in kp and ak["ssl_context"] is not None
    assert "s3cr3t-pw" not in repr(sasl)  # the secret stays hidden until the client needs it
    with pytest.raises(SettingsError, match="sasl_mechanism"):
        client_config(Settings(security_protocol=SecurityProtocol.SASL_PLAINTEXT), "aiokafka")
    with pytest.raises(SettingsError, match="sasl_username"):
        client_config(Settings(security_protocol=SecurityProtocol.SASL_PLAINTEXT, sasl_mechanism="PLAIN"), "aiokafka")


def test_client_settings_and_output_topics() -> None:
    settings = Settings(app_id="qs", exactly_once=True)
    producer = producer_config(settings, "w1")
    assert (producer["acks"], producer["enable_idempotence"], producer["transactional_id"]) == ("all", True, "qs-w1")
    assert "transactional_id" not in producer_config(settings, "w1", transactional=False)
    consumer = consumer_config(settings, "w1")
    assert consumer["group_id"] == "qs" and consumer["enable_auto_commit"] is False
    assert output_topics(Settings(events_topic="ev"), ["a"]) == ["a.validated", "a.quarantine", "a.dlq", "ev"]
    assert output_topics(Settings(events_topic="ev", mode=Mode.MONITOR), ["a"]) == ["a.quarantine", "a.dlq", "ev"]
    assert [backoff(Settings(retry_backoff_ms=500), n) for n in (1, 2, 3, 10)] == [0.5, 1.0, 2.0, 30.0]


def test_a_batch_given_up_goes_to_the_dlq_as_internal() -> None:
    from aiokafka.structs import ConsumerRecord

    records = [ConsumerRecord(TOPIC, 2, 10 + i, 1_700_000_000_000, 0, b"k", b"v%d" % i, None, 1, 2, [("h", b"1")])
               for i in range(3)]  # fmt: skip
    messages = to_messages(records)
    assert messages[0] == Message(TOPIC, 2, 10, b"v0", b"k", (("h", b"1"),), 1_700_000_000_000)

    result = internal_dead_letters(load_contract(CONTRACT).ref, messages, MemoryError("x"), Settings())
    assert result.counts == {"dead_lettered": 3} and result.last_offsets == {2: 12}
    first = result.dead_lettered[0]
    headers = dict(first.headers)
    assert first.topic == f"{TOPIC}.dlq" and first.value == b"v0" and first.key == b"k"
    assert first.headers[0] == ("h", b"1")  # the source headers first
    assert headers["qstreams.errors.class"] == b"internal.MemoryError"
    assert headers["qstreams.errors.offset"] == b"10" and headers["qstreams.errors.stage"] == b"internal"
