"""Errors the contract model raises: ContractError subclasses with full-sentence messages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from streams.contracts.loader import load_contract
from streams.errors import ContractError, StreamsError, UnknownSchemaError

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ROOT / "contracts" / "card_transactions.odcs.yaml"


def test_an_unknown_schema_object_names_the_known_ones() -> None:
    contract = load_contract(FEATURES)
    with pytest.raises(UnknownSchemaError) as info:
        contract.schema("card_transaction")
    message = str(info.value)
    assert message.startswith(f"Contract {contract.ref} ({contract.path}) has no schema object 'card_transaction'")
    assert message.endswith("its schema objects are: card_transactions (topic features.card-transactions.v1).")
    assert isinstance(info.value, ContractError) and isinstance(info.value, StreamsError)
    assert isinstance(info.value, KeyError)  # what was raised before


def test_a_contract_with_several_schema_objects_needs_a_name() -> None:
    contract = load_contract(FEATURES)
    second = dataclasses.replace(contract.schemas[0], name="refunds", topic="shop.refunds.v1")
    several = dataclasses.replace(contract, schemas=(*contract.schemas, second))
    with pytest.raises(UnknownSchemaError, match="has several schema objects, so one must be named") as info:
        several.schema()
    known = "card_transactions (topic features.card-transactions.v1), refunds (topic shop.refunds.v1)."
    assert str(info.value).endswith(known)
    assert several.schema("shop.refunds.v1") is second


def test_an_unknown_field_names_the_known_ones() -> None:
    schema = load_contract(FEATURES).schema()
    assert schema.field("amount").name == "amount"
    with pytest.raises(UnknownSchemaError, match="has no field 'amont'; its fields are: event_id, ") as info:
        schema.field("amont")
    assert isinstance(info.value, KeyError)
