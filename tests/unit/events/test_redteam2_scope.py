"""Red-team pass 2: a batch's ``rule.violation`` says its scope, ``batch`` (docs/events.md: ``scope: batch``);
window ones say ``window``. Without it a consumer could not tell a batch's verdict from a window's by the data."""

from __future__ import annotations

from pathlib import Path

from streams.contracts.loader import load_contract
from streams.events.codec import event_data, from_kafka, validate_event
from streams.pipeline.binding import Binding
from streams.settings import Mode, Settings
from streams.testing import generate_feature_records, make_messages

ROOT = Path(__file__).resolve().parents[3]


def test_batch_rule_violations_say_scope_batch() -> None:
    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    binding = Binding(contract, contract.schema(), Settings(mode=Mode.MONITOR, batch_events=True))
    records = generate_feature_records(60, seed=5, faults={"invalid_enum": 0.2}).records
    result = binding.process(make_messages(records, "features.card-transactions.v1"), worker_id="w")
    events = [from_kafka(e.key, e.value, e.headers) for e in result.events]
    violations = [e for e in events if e.get_type() == "io.qualitystreams.rule.violation.v1"]
    assert violations
    for e in violations:
        validate_event(e)
        assert event_data(e)["scope"] == "batch"
