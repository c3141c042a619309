"""Faults end in a bounded state, without a broker (issue 8 §3–§5): the in-memory transport drives the worker."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.contracts.loader import load_contract
from streams.errors import SettingsError
from streams.kafka.batches import BatchWorker
from streams.observability import Health
from streams.pipeline.binding import Binding
from streams.pipeline.records import Message, OutRecord
from streams.settings import Settings
from streams.testing import generate_feature_records
from streams.testing.transport import InMemoryTransport
from tests.unit.kafka.test_worker_inmemory import CONTRACT, EVENTS, TOPIC, TP0, feed, run, running, worker_for


class UnsupportedCodecError(Exception):
    """Stands for aiokafka's error on a batch compressed with a codec whose library is missing."""


def test_a_partition_whose_fetch_keeps_failing_fails_health_with_its_cause() -> None:
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
    worker = worker_for(transport)
    health: Health = worker.health
    transport.poll_failures.extend(UnsupportedCodecError("lz4 is not available") for _ in range(3))

    async def scenario() -> None:
        feed(transport, 10, 0)
        async with running(worker):
            await transport.wait_for(lambda: not transport.poll_failures and bool(health.down), timeout=10)
            status, body = health.report()
            assert status == 503
            assert (
                "fetch failed 3 times in a row: UnsupportedCodecError: lz4 is not available" in body["problems"][TOPIC]
            )
            await worker.transport.probe(worker)  # a probe of the cluster is no poll: still failing
            assert health.report()[0] == 503
            await transport.wait_for(lambda: sum(transport.committed.values()) == 10)
            assert health.report()[0] == 200  # a poll that works clears it

    run(scenario)


# --- outputs that fit (issue 8 §3) ----------------------------------------------------------------------------

VALIDATED, QUARANTINE, DLQ = f"{TOPIC}.validated", f"{TOPIC}.quarantine", f"{TOPIC}.dlq"
KiB = 1024


def record(i: int = 0, **changes: Any) -> bytes:
    """Valid feature record ``i`` (distinct event ids), with ``changes``."""
    r = dict(generate_feature_records(i + 1, seed=21).records[i])
    r.update(changes)
    return orjson.dumps(r)


def headers_of(m: Message) -> dict[str, str]:
    return {k: v.decode() for k, v in m.headers}


class PolicyViolationError(Exception):
    """A broker refusing a record for a reason no retry fixes (not retriable)."""

    retriable = False


class RefusingTransport(InMemoryTransport):
    """Refuses every submission to ``refused`` topics."""

    def __init__(self, refused: set[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.refused, self.refusals = refused, 0

    def _submit(self, topic: str, partition: int, records: list[OutRecord]) -> asyncio.Future[Any]:
        if topic in self.refused:
            self.refusals += 1
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_exception(PolicyViolationError(f"{topic} refuses writes"))
            return future
        return super()._submit(topic, partition, records)


def test_a_refused_produce_ends_in_the_dlq_after_the_retries_counting_across_cycles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = RefusingTransport({VALIDATED}, sources=[TOPIC], partitions={TOPIC: 1})
    worker = worker_for(transport, batch_retries=2)
    caplog.set_level(logging.ERROR, logger="streams")

    async def scenario() -> None:
        sent = [transport.produce(TOPIC, record(i)) for i in range(5)]
        async with running(worker):
            await transport.wait_for(lambda: transport.committed.get(TP0) == 5, timeout=15)
        dlq = transport.records(DLQ)
        assert [orjson.loads(m.value or b"")["offset"] for m in dlq] == [m.offset for m in sent]
        assert {headers_of(m)["qstreams.errors.class"] for m in dlq} == {"output.refused.PolicyViolationError"}
        assert all(orjson.loads(m.value or b"")["reference"] is True for m in dlq)
        assert not transport.records(VALIDATED)
        attempts = [r.getMessage() for r in caplog.records if "produce failed (attempt" in r.getMessage()]
        assert [a.split("(attempt ")[1].split(")")[0] for a in attempts] == ["1 of 3", "2 of 3", "3 of 3"]

    run(scenario)


def test_a_quarantine_copy_over_the_broker_limit_becomes_a_reference() -> None:
    """The red team's 1,048,300-byte invalid record on a 1 MiB broker: the copy plus headers would not fit."""
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
    worker = worker_for(transport, max_message_bytes=2 * 1_048_576)
    value = record(channel="web", merchant_id="m" * 10)
    value = value[:-1] + b', "pad": "' + b"x" * (1_048_300 - len(value) - 11) + b'"}'
    assert len(value) == 1_048_300

    async def scenario() -> None:
        transport.produce(TOPIC, value, key=b"k1")
        async with running(worker):
            await transport.wait_for(lambda: transport.committed.get(TP0) == 1)
        [ref] = transport.records(DLQ)
        body, h = orjson.loads(ref.value or b""), headers_of(ref)
        assert body == {
            "reference": True, "topic": TOPIC, "partition": 0, "offset": 0, "size": body["size"], "limit": 1_048_588,
            "output_topic": QUARANTINE, "reason": "too_large_for_output",
        }  # fmt: skip
        assert body["size"] > 1_048_300 and ref.key == b"k1"
        assert h["qstreams.errors.class"] == "output.too_large_for_output"
        assert h["qstreams.errors.original_class"] == "contract.violation" and "channel" in h["qstreams.errors.rules"]
        assert not transport.records(QUARANTINE)

    run(scenario)


def test_a_dead_letter_copy_over_the_dlq_limit_becomes_a_reference() -> None:
    """The red team's 1.5 MB record on a topic allowing 16 MB while the DLQ allows 1 MiB."""
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
    transport.limits = {TOPIC: 16 * 1_048_576, DLQ: 1_048_576}
    worker = worker_for(transport)  # max_message_bytes 1 MiB: TOO_LARGE, whose copy would go to the DLQ
    value = record(pad="x" * 1_500_000)

    async def scenario() -> None:
        transport.produce(TOPIC, value)
        async with running(worker):
            await transport.wait_for(lambda: transport.committed.get(TP0) == 1)
        [ref] = transport.records(DLQ)
        body, h = orjson.loads(ref.value or b""), headers_of(ref)
        assert (body["reason"], body["offset"], body["limit"], body["output_topic"]) == (
            "too_large_for_output", 0, 1_048_576, DLQ)  # fmt: skip
        assert h["qstreams.errors.original_class"] == "decode.TOO_LARGE"

    run(scenario)


def test_events_are_cut_to_fit_the_events_topic() -> None:
    """The red team's six 900 KB violations of a non-classified field (a 5.4 MB rule-violation event)."""
    transport = InMemoryTransport(sources=[TOPIC], partitions={TOPIC: 1})
    worker = worker_for(transport, max_message_bytes=2 * 1_048_576)
    values = [record(i, merchant_category_code=str(i) * 900_000) for i in range(6)]

    async def scenario() -> None:
        for v in values:
            transport.produce(TOPIC, v)
        async with running(worker):
            await transport.wait_for(lambda: transport.committed.get(TP0) == 6)
        assert len(transport.records(QUARANTINE)) == 6
        events = transport.records(EVENTS)
        violations = [e for e in events if dict(e.headers).get("ce_type") == b"io.qualitystreams.rule.violation.v1"]
        assert violations and all(len(e.value or b"") < 1_048_588 for e in events)
        assert b"[truncated" in b"".join(e.value or b"" for e in violations)

    run(scenario)


# --- a contract bound to an output of the worker (issue 8 §5) ----------------------------------------------------


@pytest.mark.parametrize("bound", ["my.events", f"{TOPIC}.dlq", "orders.validated", "orders.quarantine"])
def test_a_contract_bound_to_an_output_topic_is_refused_at_start_with_exit_2(
    bound: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from streams.cli.main import app

    text = CONTRACT.read_text().replace(f"physicalName: {TOPIC}", f"physicalName: {bound}")
    (tmp_path / "c.yaml").write_text(text)
    monkeypatch.setenv("STREAMS_EVENTS_TOPIC", "my.events")  # the worker's own settings, not lint's defaults
    started: list[bool] = []
    monkeypatch.setattr("streams.kafka.batches.BatchWorker.run", lambda self: started.append(True))
    res = CliRunner().invoke(app, ["worker", "--contracts", str(tmp_path), "--broker", "127.0.0.1:1",
                                   "--web-port", "0"])  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "c.yaml:" in res.output and "would validate its own output" in res.output and bound in res.output
    assert not started


def test_the_batch_worker_refuses_a_binding_on_its_events_topic() -> None:
    transport = InMemoryTransport(sources=[EVENTS], partitions={EVENTS: 1})
    contract = load_contract(CONTRACT)
    settings = Settings(events_topic=EVENTS, web_port=0)
    binding = Binding(contract, dataclasses.replace(contract.schema(), topic=EVENTS), settings)
    with pytest.raises(SettingsError, match="quality-events topic"):
        BatchWorker(settings, [binding], worker_id="w1", transport=transport)


# --- the events topic refusing writes (issue 8 §5) ---------------------------------------------------------------


class RefusingForAWhile(RefusingTransport):
    """Refuses writes to ``refused`` topics for the first ``times`` submissions, then accepts them."""

    def __init__(self, refused: set[str], times: int, **kwargs: Any) -> None:
        super().__init__(refused, **kwargs)
        self.times, self.paused_seen = times, False

    def _submit(self, topic: str, partition: int, records: list[OutRecord]) -> asyncio.Future[Any]:
        self.paused_seen |= bool(self.paused)
        if self.refusals >= self.times:
            self.refused = set()
        return super()._submit(topic, partition, records)


def test_an_events_topic_refusing_writes_pauses_consumption_instead_of_resending_outputs() -> None:
    """The red team: 3,100 duplicate outputs from 100 inputs in 15 s while the events topic refused writes."""
    transport = RefusingForAWhile({EVENTS}, times=6, sources=[TOPIC], partitions={TOPIC: 1})
    worker = worker_for(transport, batch_max_records=20)

    async def scenario() -> None:
        _, invalid = feed(transport, 100, 0)
        async with running(worker):
            await transport.wait_for(lambda: transport.committed.get(TP0) == 100, timeout=20)
        outputs = transport.records(VALIDATED) + transport.records(QUARANTINE) + transport.records(DLQ)
        assert len(outputs) == 100, f"{len(outputs) - 100} duplicate outputs"
        assert transport.refusals >= 6 and transport.paused_seen
        assert not transport.paused  # resumed once the events landed
        summaries = [
            e for e in transport.records(EVENTS) if dict(e.headers).get("ce_type", b"").endswith(b"summary.v1")
        ]
        assert sum(orjson.loads(e.value or b"")["counts"]["valid"] for e in summaries) == 100 - len(invalid)

    run(scenario)


def test_event_samples_of_huge_values_are_cut_even_when_the_event_fits() -> None:
    from streams.pipeline.fitting import SAMPLE_BOUND, shrink_event

    value = orjson.dumps({"rule": {"name": "r"}, "failure_cases": [{"value": "v" * 200_000}]})
    cut = shrink_event(OutRecord(EVENTS, value), 16 * 1_048_576)
    assert cut is not None and len(cut.value or b"") < SAMPLE_BOUND
    case = orjson.loads(cut.value or b"")["failure_cases"][0]["value"]
    assert case.startswith("v" * 1024) and case.endswith("…[truncated 198976 bytes]")
    small = OutRecord(EVENTS, orjson.dumps({"value": "v" * 5000}))
    assert shrink_event(small, 1_048_588) is small
