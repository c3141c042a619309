"""The bulk decoder in the pipeline: the same routing as the per-message decoder, valid messages forwarded as their
own bytes (the very objects consumed, no re-encoding)."""

from __future__ import annotations

from pathlib import Path

import orjson

from streams.contracts.loader import load_contract
from streams.formats.decoder import Decoder
from streams.formats.reasons import DecodeReason
from streams.pipeline.binding import Binding
from streams.pipeline.records import BatchResult, OutRecord
from streams.settings import Mode, Settings
from streams.testing import generate_feature_records, make_messages, undecodable_messages

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
FAULTS = {"wrong_type": 0.03, "missing_field": 0.03, "unknown_field": 0.03, "out_of_range": 0.03, "null_required": 0.03}


def shown(records: list[OutRecord]) -> list[tuple[str, bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]]:
    return [(r.topic, r.value, r.key, r.headers) for r in records]


def run(bulk: bool) -> tuple[BatchResult, list[bytes | None], int]:
    schema = CONTRACT.schema()
    records = generate_feature_records(300, seed=11, faults=FAULTS).records
    messages = make_messages(records, schema.topic, key_field="event_id")
    bad = [m for _, m in undecodable_messages(schema.topic, start_offset=1000)]
    messages = messages[:100] + bad + messages[100:]
    binding = Binding(CONTRACT, schema, Settings(mode=Mode.GATE, batch_events=True))
    binding.decoder = Decoder(schema, max_message_bytes=binding.settings.max_message_bytes, bulk=bulk)
    result = binding.process(messages, worker_id="w")
    reader = binding.decoder._bulk
    proven = len(reader.read(messages, binding.settings.max_message_bytes)[1]) if reader is not None else 0
    return result, [m.value for m in messages], proven


def test_gate_routes_the_same_with_bulk_and_per_message_decode_and_forwards_the_consumed_bytes() -> None:
    bulk, values, proven = run(bulk=True)
    per_message, _, none = run(bulk=False)
    assert proven > 200 and none == 0  # the bulk path read most records
    assert bulk.counts == per_message.counts
    assert bulk.counts["valid"] > 200 and bulk.counts["quarantined"] > 20
    assert bulk.counts["dead_lettered"] == len(DecodeReason)
    for outcome in ("validated", "quarantined", "dead_lettered"):
        assert shown(getattr(bulk, outcome)) == shown(getattr(per_message, outcome))
    assert bulk.rule_failures == per_message.rule_failures
    # the validated values are the consumed value objects themselves, in order, and they are valid JSON objects
    consumed = {id(v) for v in values}
    assert all(id(r.value) in consumed for r in bulk.validated)
    assert all(type(orjson.loads(r.value or b"")) is dict for r in bulk.validated)
