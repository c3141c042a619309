"""A poll of several partitions routed in one call (``Binding.process_poll``) equals routing each partition alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.contracts.loader import load_contract
from streams.pipeline.binding import Binding
from streams.pipeline.headers import NDJSON
from streams.pipeline.records import BatchResult, Message
from streams.settings import Mode, Settings
from streams.testing import generate_feature_records, make_messages

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = ROOT / "contracts" / "card_transactions.odcs.yaml"
TOPIC = "features.card-transactions.v1"
FAULTS = {"wrong_type": 0.1, "invalid_enum": 0.1, "out_of_range": 0.05}


def poll() -> list[list[Message]]:
    """Three partition batches: faulty JSON records, an undecodable message and a mixed NDJSON message."""
    batches = []
    for p in range(3):
        records: list[Any] = list(generate_feature_records(30, seed=p, faults=FAULTS).records)
        good, bad = generate_feature_records(2, seed=10 + p).records[0], {"event_id": f"x{p}"}
        records[5] = b"{not json"
        records[9] = orjson.dumps(good) + b"\n" + orjson.dumps(bad) + b"\n"
        ms = make_messages(records, TOPIC, partition=p, start_offset=100 * p, key_field=None)
        ms[9].headers = (("content-type", NDJSON.encode()),)
        batches.append(ms)
    return batches


def binding(mode: Mode) -> Binding:
    contract = load_contract(CONTRACT)
    return Binding(contract, contract.schema(), Settings(mode=mode, batch_events=True, web_port=0))


def outputs(r: BatchResult) -> tuple[Any, ...]:
    return r.validated, r.quarantined, r.dead_lettered, r.counts, r.last_offsets


@pytest.mark.parametrize("mode", [Mode.GATE, Mode.MONITOR])
def test_a_poll_is_decoded_and_validated_once_and_split_as_per_partition(mode: Mode) -> None:
    batches = poll()
    together, alone = binding(mode), binding(mode)
    calls: list[tuple[str, int]] = []
    decode, validate = together.decoder.decode, together.plan.validate
    together.decoder.decode = lambda ms: calls.append(("decode", len(ms))) or decode(ms)  # type: ignore[method-assign]
    together.plan.validate = lambda f: calls.append(("validate", f.height)) or validate(f)  # type: ignore[method-assign]

    split = together.process_poll(batches, worker_id="w")
    one_by_one = [alone.process(b, worker_id="w") for b in batches]

    assert calls == [("decode", 90), ("validate", 90 - 3 + 3)]  # 3 undecodable, 3 two-record NDJSON messages
    assert len(split) == 3
    for s, o in zip(split, one_by_one, strict=True):
        assert outputs(s) == outputs(o)
        assert s.quarantined and s.dead_lettered and (s.validated or mode is Mode.MONITOR)
    assert sum(s.counts["valid"] for s in split) > 0
    # the poll's events describe the whole poll and travel with the first batch
    assert split[0].events and not split[1].events and not split[2].events
    summary = next(e for e in split[0].events if ("ce_type", b"io.qualitystreams.batch.summary.v1") in e.headers)
    offsets = orjson.loads(summary.value or b"")["offsets"]
    assert offsets == [{"partition": p, "first": 100 * p, "last": 100 * p + 29} for p in range(3)]
    assert split[0].rule_failures == {
        k: sum(o.rule_failures.get(k, 0) for o in one_by_one) for k in split[0].rule_failures
    }


def test_batches_that_are_not_one_per_partition_are_processed_one_by_one() -> None:
    b = binding(Mode.GATE)
    batches = poll()
    twice = [batches[0], batches[0]]
    calls: list[int] = []
    decode = b.decoder.decode
    b.decoder.decode = lambda ms: calls.append(len(ms)) or decode(ms)  # type: ignore[method-assign]
    results = b.process_poll(twice, worker_id="w")
    assert calls == [30, 30]
    assert outputs(results[0]) == outputs(results[1])


def test_in_batch_rules_judge_the_whole_poll() -> None:
    """Without stream time a batch is what the worker polled of a topic: a value repeated in two partitions of
    one poll is a duplicate (``unique``), as it is within one partition (docs/semantics.md, "What a batch is")."""
    records = generate_feature_records(4, seed=3).records
    twin = dict(records[3], event_id=records[0]["event_id"])
    batches = [make_messages(records[:2], TOPIC, partition=0), make_messages([records[2], twin], TOPIC, partition=1)]
    split = binding(Mode.GATE).process_poll(batches, worker_id="w")
    alone = [binding(Mode.GATE).process(b, worker_id="w") for b in batches]
    assert [s.counts["quarantined"] for s in alone] == [0, 0]
    assert [s.counts["quarantined"] for s in split] == [1, 1]
    rules = [dict(s.quarantined[0].headers)["qstreams.errors.rules"] for s in split]
    assert rules == [b"event_id:unique", b"event_id:unique"]


def test_a_stage_that_does_not_judge_windows_sees_the_whole_poll() -> None:
    """Without stream time, a binding's other stages (a ``quarantine-stream`` policy) amend the poll routed as one
    batch: one decode, one stage call, and what each partition gets is what it gets alone (the policy is per row)."""
    from streams.policies.control import Engaged, QuarantineStage

    def engaged() -> Binding:
        b = binding(Mode.GATE)
        engaged = Engaged({(b.contract.id, b.schema.name): {"stop-the-line": "incident-1"}})
        b.stages.append(QuarantineStage(b.contract.id, b.schema.name, engaged))
        return b

    together, alone = engaged(), engaged()
    seen: list[int] = []
    stage = together.stages[0]
    amend = stage.amend
    stage.amend = lambda ms, *rest: seen.append(len(ms)) or amend(ms, *rest)  # type: ignore[method-assign]
    batches = poll()
    split = together.process_poll(batches, worker_id="w")
    one_by_one = [alone.process(b, worker_id="w") for b in batches]
    assert seen == [90]
    for s, o in zip(split, one_by_one, strict=True):
        assert outputs(s) == outputs(o)
        assert not s.validated and s.quarantined
        assert all(b"policy:stop-the-line" in dict(r.headers)["qstreams.errors.rules"] for r in s.quarantined)
    assert split[0].poll_events and not split[1].poll_events
