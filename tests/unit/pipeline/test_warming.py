"""A binding warmed before its first batch: the engine's plans for a full batch are ready, nothing else changed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from streams.contracts.loader import load_contract
from streams.pipeline.binding import Binding
from streams.pipeline.records import Message, OutRecord
from streams.pipeline.warming import warm, warm_all
from streams.settings import Settings
from streams.testing import generate_feature_records
from streams.validation.report import ValidationReport

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = ROOT / "contracts" / "card_transactions.odcs.yaml"


class Recording:
    """A stage that records every call (warming must not call it: stream-time state would change)."""

    judges_windows = False

    def __init__(self) -> None:
        self.calls = 0

    def amend(self, messages: Sequence[Message], frame: pl.DataFrame, rows: Sequence[int],
              report: ValidationReport | None, dead: Sequence[int],
              irregular: Sequence[Any] = ()) -> tuple[ValidationReport | None, list[OutRecord]]:  # fmt: skip
        self.calls += 1
        return report, []


def _binding(**more: Any) -> Binding:
    contract = load_contract(CONTRACT)
    return Binding(contract, contract.schema(), Settings(stream_time=False, **more))


def _messages(n: int) -> list[Message]:
    batch = generate_feature_records(n, seed=5, faults={"wrong_type": 0.05, "invalid_enum": 0.05}).records
    return [Message("t", 0, i, orjson.dumps(r), b"k", (), 1_740_787_200_000) for i, r in enumerate(batch)]


def _size_class(rows: int) -> int:
    return 1 << (rows.bit_length() - 1)


def test_warming_prepares_the_plan_of_a_full_batch_of_the_wire_schema() -> None:
    binding = _binding(batch_max_records=3000)
    assert binding.plan._cache == {}
    warm(binding)
    assert (tuple(binding._wire.items()), _size_class(3000)) in binding.plan._cache


def test_warming_changes_no_verdict_no_stage_and_no_decoder_state() -> None:
    warmed, cold = _binding(batch_max_records=400), _binding(batch_max_records=400)
    stage = Recording()
    warmed.stages.append(stage)
    bulk = warmed.decoder._bulk
    assert bulk is not None
    bulk.order = tuple(reversed(bulk.names))  # a learnt key order and a cooldown in progress stay as they are
    bulk.cooldown = 2
    warm_all([warmed])
    assert stage.calls == 0 and bulk.order == tuple(reversed(bulk.names)) and bulk.cooldown == 2
    bulk.order, bulk.cooldown = bulk.names, 0
    messages = _messages(400)
    a, b = warmed.process(messages, worker_id="w"), cold.process(messages, worker_id="w")
    assert stage.calls == 1
    assert (a.validated, a.quarantined, a.dead_lettered, a.counts) == (b.validated, b.quarantined, b.dead_lettered,
                                                                      b.counts)  # fmt: skip
    assert a.counts["valid"] > 0 and a.counts["quarantined"] > 0


def test_a_binding_that_cannot_be_warmed_is_left_to_its_first_batch(caplog: Any) -> None:
    binding = _binding()
    binding.plan = None  # type: ignore[assignment]  # any failure: logged, never raised
    warm_all([binding])
    assert "could not warm up the binding" in caplog.text
