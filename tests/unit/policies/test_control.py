"""quarantine-stream on the worker side: the control record engages the stage, a tombstone releases it."""

from __future__ import annotations

import orjson

from streams.contracts.model import Contract
from streams.pipeline.binding import Binding
from streams.pipeline.records import Message
from streams.policies.control import Engaged, QuarantineStage, control_record
from streams.settings import Settings


def batch(n: int = 4) -> list[Message]:
    values = [orjson.dumps({"id": f"r{i}", "amount": 5000.0 if i == 0 else 10.0}) for i in range(n)]
    return [*(Message("shop.payments.v1", 0, i, v, b"k") for i, v in enumerate(values)),
            Message("shop.payments.v1", 0, n, b"{not json", b"k")]  # fmt: skip


def test_an_engaged_binding_routes_every_record_to_quarantine_until_released(contract: Contract) -> None:
    binding = Binding(contract, contract.schemas[0], Settings())
    engaged = Engaged()
    binding.stages.append(QuarantineStage(contract.id, "payments", engaged))
    normal = binding.process(batch(), worker_id="w")
    assert (len(normal.validated), len(normal.quarantined), len(normal.dead_lettered)) == (3, 1, 1)

    on = control_record("ctl", contract.id, "payments", "window-failing", engaged=True, incident="ab" * 16, since="x")
    engaged.apply(on.key, on.value)
    held = binding.process(batch(), worker_id="w")
    assert (len(held.validated), len(held.quarantined), len(held.dead_lettered)) == (0, 4, 1)  # nothing lost
    rules = [dict(r.headers)[binding.names.errors_rules].decode() for r in held.quarantined]
    assert rules == ["amount:maximum,policy:window-failing", *["policy:window-failing"] * 3]
    other = Engaged()
    other.apply(on.key, on.value)
    assert other.policies(contract.id, "other-schema") == []

    off = control_record("ctl", contract.id, "payments", "window-failing", engaged=False, incident="ab" * 16, since="x")
    assert off.value is None
    engaged.apply(off.key, off.value)
    back = binding.process(batch(), worker_id="w")
    assert (len(back.validated), len(back.quarantined)) == (3, 1)


def test_garbage_on_the_control_topic_is_skipped() -> None:
    engaged = Engaged()
    engaged.apply(b"nope", b"{}")
    engaged.apply(None, None)
    assert engaged.by_binding == {}
