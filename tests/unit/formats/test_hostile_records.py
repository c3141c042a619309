"""Hostile record values (issue 8 §6): duplicate JSON keys and deep nesting are routed at once, with a reason."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.contracts.loader import load_contract
from streams.contracts.model import Contract
from streams.formats.decoder import Decoder
from streams.formats.jsonvalues import has_duplicate_keys, key_bound
from streams.formats.reasons import DecodeReason
from streams.pipeline.binding import Binding
from streams.pipeline.headers import NDJSON, header
from streams.settings import Settings
from streams.testing import generate_feature_records, make_messages

ROOT = Path(__file__).resolve().parents[3]
TOPIC = "features.card-transactions.v1"


@pytest.fixture(scope="module")
def features() -> Contract:
    return load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")


def record() -> dict[str, Any]:
    return dict(generate_feature_records(1, seed=3).records[0])


@pytest.mark.parametrize(
    "value",
    [
        b'{"a": 1, "a": 2}',
        b'{"a" : 1, "b": {"c": 1, "c" :2}}',  # nested, blanks before the colon
        b'{"a":1,\n"b":[{"x":1},{"x":2,"x":3}]}',  # in an object inside an array
        b'{"a": "say \\":", "b": 1, "b": 2}',  # a key-like "\": inside a string does not hide it
    ],
)
def test_duplicate_keys_are_found(value: bytes) -> None:
    assert has_duplicate_keys(value, orjson.loads(value))


@pytest.mark.parametrize(
    "value",
    [
        b'{"a": 1, "b": 2}',
        b'{"a" : 1, "b" :{"c": 1, "d": [{"c": 2}]}}',
        b'{"a": "x\\": y", "t": "2024-01-01T10:00:00Z"}',  # "\": inside a string: counted, then cleared
    ],
)
def test_no_false_duplicates(value: bytes) -> None:
    assert not has_duplicate_keys(value, orjson.loads(value))
    assert key_bound(value) >= 2


def test_duplicate_key_record_is_dead_lettered_not_forwarded(features: Contract) -> None:
    good = record()
    dup = orjson.dumps(good)[:-1] + b', "amount": -5.0}'  # the last value wins in orjson, the first elsewhere
    result = Binding(features, features.schema(), Settings()).process(
        make_messages([orjson.dumps(good), dup], TOPIC), worker_id="w"
    )
    assert [d.value for d in result.dead_lettered] == [dup]
    assert header(result.dead_lettered[0].headers, "qstreams.errors.class") == b"decode.DUPLICATE_KEY"
    assert [r.value for r in result.validated] == [orjson.dumps(good)] and not result.quarantined


def test_duplicate_key_ndjson_line_is_dead_lettered_alone(features: Contract) -> None:
    good = orjson.dumps(record())
    line = good[:-1] + b', "merchant_id": "x"}'
    decoder = Decoder(features.schema())
    msg = make_messages([good + b"\n" + line + b"\n"], TOPIC)[0]
    out = decoder.decode([replace(msg, headers=(("content-type", NDJSON.encode()),))])
    assert [(d.reason, d.line) for d in out.dead] == [(DecodeReason.DUPLICATE_KEY, 1)]
    assert out.frame.height == 1


def test_deep_nesting_in_a_string_field_is_one_pass_not_a_bisection(
    features: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    """600 records with a 300-deep object in a string field: quarantined as dtype failures in one pass."""
    values = [_dumps_deep(dict(r)) for r in generate_feature_records(600, seed=5).records]
    binding = Binding(features, features.schema(), Settings())

    def no_bisection(*_: Any) -> Any:
        raise AssertionError("the pipeline bisected the batch")

    monkeypatch.setattr(binding, "_isolate", no_bisection)
    result = binding.process(make_messages(values, TOPIC), worker_id="w")
    assert len(result.quarantined) == 600 and not result.dead_lettered
    assert result.rule_failures.get("merchant_id:dtype") == 600


def _dumps_deep(r: dict[str, Any]) -> bytes:
    """orjson serializes 254 levels at most: nest the deep value by hand."""
    head = orjson.dumps({k: v for k, v in r.items() if k != "merchant_id"})[:-1]
    return head + b', "merchant_id": ' + b'{"a": ' * 300 + b"1" + b"}" * 300 + b"}"
