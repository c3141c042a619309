"""Integers beyond int64 on the negative side: orjson reads an integer literal below -2**63 as a float, which rounds
to exactly -2**63 for the next 1024 integers; it must fail ``dtype`` as every value beyond int64 does, not pass as
-2**63 (docs/semantics.md, "logicalType: integer and JSON numbers")."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.contracts.loader import load_contract
from streams.contracts.model import SchemaObject
from streams.formats.decoder import Decoder, MessageDecoder
from streams.pipeline.records import Message

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def schema() -> SchemaObject:
    return load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml").schema()


@pytest.mark.parametrize(
    "literal", [b"-9223372036854775809", b"-9223372036854776000", b"-9223372036854776832", b"-9223372036854775808.0"]
)
@pytest.mark.parametrize("bulk", [True, False])
def test_integers_below_int64_are_type_mismatches_not_the_minimum(
    schema: SchemaObject, literal: bytes, bulk: bool
) -> None:
    value = b'{"event_id":"e1","seconds_since_last_txn":' + literal + b"}"
    decoder = Decoder(schema) if bulk else MessageDecoder(schema)
    decoded = decoder.decode([Message(schema.topic, 0, 0, value)])
    assert decoded.frame.get_column("seconds_since_last_txn").to_list() == [None]
    assert decoded.mismatches.get_column("column").to_list() == ["seconds_since_last_txn"]
    assert decoded.type_mismatches == {"seconds_since_last_txn": 1}


@pytest.mark.parametrize(("literal", "expected"), [(b"-9223372036854775808", -(2**63)), (b"-9223372036854774784.0",
                                                                                         -(2**63) + 1024)])  # fmt: skip
def test_the_int64_minimum_as_an_integer_and_integral_floats_above_it_still_fit(
    schema: SchemaObject, literal: bytes, expected: int
) -> None:
    value = b'{"event_id":"e1","seconds_since_last_txn":' + literal + b"}"
    decoded = MessageDecoder(schema).decode([Message(schema.topic, 0, 0, value)])
    assert decoded.frame.get_column("seconds_since_last_txn").to_list() == [expected]
    assert decoded.mismatches.height == 0
