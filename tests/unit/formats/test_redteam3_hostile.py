"""Red team 3, hostile values: a byte order mark before NDJSON is tolerated as before one object; blank means JSON's
whitespace only (a form feed line is dead-lettered, not dropped); a deep record (past Python's recursion limit, within
orjson's 1024 levels) is not called a duplicate-key record when it repeats no key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts.loader import load_contract
from streams.contracts.model import SchemaObject
from streams.formats.decoder import Decoder, MessageDecoder
from streams.formats.jsonvalues import _scan_duplicates, has_duplicate_keys
from streams.formats.reasons import DecodeReason, Format
from streams.pipeline.records import Message

ROOT = Path(__file__).resolve().parents[3]
BOM = b"\xef\xbb\xbf"
NDJSON_HEADER = (("content-type", b"application/x-ndjson"),)


@pytest.fixture(scope="module")
def schema() -> SchemaObject:
    return load_contract(ROOT / "contracts" / "fraud_predictions.odcs.yaml").schema()


def one(schema: SchemaObject, value: bytes, headers: tuple[tuple[str, bytes], ...] = (), *, bulk: bool = False) -> Any:
    decoder = Decoder(schema) if bulk else MessageDecoder(schema)
    return decoder.decode([Message(schema.topic, 0, 0, value, None, headers)])


@pytest.mark.parametrize("headers", [(), NDJSON_HEADER], ids=["by content", "by header"])
def test_a_byte_order_mark_before_ndjson_is_tolerated(
    schema: SchemaObject, headers: tuple[tuple[str, bytes], ...]
) -> None:
    value = BOM + b'{"event_id":"a"}\n{"event_id":"b"}\n'
    decoded = one(schema, value, headers)
    assert decoded.dead == []
    assert decoded.formats == [Format.NDJSON]
    assert decoded.frame.get_column("event_id").to_list() == ["a", "b"]
    assert decoded.lines[0][0] == b'{"event_id":"a"}'  # the re-encoded first record carries no mark


@pytest.mark.parametrize(("value", "reason"), [(BOM, DecodeReason.EMPTY), (BOM + b"[1]", DecodeReason.NOT_OBJECT),
                                               (BOM + b'{"a":', DecodeReason.TRUNCATED)])  # fmt: skip
def test_a_byte_order_mark_before_anything_else_gets_the_reason_of_what_follows(
    schema: SchemaObject, value: bytes, reason: DecodeReason
) -> None:
    assert [d.reason for d in one(schema, value).dead] == [reason]


@pytest.mark.parametrize("junk", [b"\x0c", b"\x0b", b"\xc2\xa0"])
def test_a_line_of_non_json_whitespace_is_dead_lettered_not_dropped(schema: SchemaObject, junk: bytes) -> None:
    decoded = one(schema, b'{"event_id":"a"}\n' + junk + b'\n{"event_id":"b"}\n', NDJSON_HEADER)
    assert [(d.reason, d.line) for d in decoded.dead] == [(DecodeReason.NOT_JSON, 1)]
    assert decoded.frame.get_column("event_id").to_list() == ["a", "b"]


@pytest.mark.parametrize("bulk", [True, False])
@pytest.mark.parametrize("junk", [b"\x0c", b"\xc2\xa0", b" \x0c "])
def test_a_value_of_non_json_whitespace_is_not_json_not_blank(schema: SchemaObject, junk: bytes, bulk: bool) -> None:
    assert [d.reason for d in one(schema, junk, bulk=bulk).dead] == [DecodeReason.NOT_JSON]


@pytest.mark.parametrize("depth", [999, 1000, 1022])
def test_a_deep_record_without_a_repeated_key_is_not_a_duplicate(schema: SchemaObject, depth: int) -> None:
    # a '":' inside a string defeats the quick count, so the document is re-read: deeper than Python's recursion limit
    value = b'{"event_id":"\\":","x":' + b"[" * depth + b"]" * depth + b"}"
    decoded = one(schema, value)
    assert decoded.dead == []
    assert decoded.frame.get_column("event_id").to_list() == ['":']
    repeated = b'{"event_id":"\\":","x":' + b"[" * depth + b'{"a":1,"\\u0061":2}' + b"]" * depth + b"}"
    assert [d.reason for d in one(schema, repeated).dead] == [DecodeReason.DUPLICATE_KEY]


keys = st.sampled_from(["a", "b", "\u00e9", 'q"', "\\", "x:"])
docs = st.recursive(
    st.none() | st.integers() | st.text(st.sampled_from('a":\\{}[],'), max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.lists(st.tuples(keys, inner), max_size=3).map(lambda kv: ("obj", kv))
    ),
    max_leaves=8,
)


def write(x: Any, ascii_keys: bool) -> str:
    if type(x) is tuple:
        return (
            "{" + ",".join(json.dumps(k, ensure_ascii=ascii_keys) + ":" + write(v, ascii_keys) for k, v in x[1]) + "}"
        )
    if type(x) is list:
        return "[" + ",".join(write(v, ascii_keys) for v in x) + "]"
    return json.dumps(x)


class Dup(Exception):
    pass


def pairs(kv: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(dict(kv)) != len(kv):
        raise Dup
    return dict(kv)


@settings(max_examples=300, deadline=None)
@given(doc=st.lists(st.tuples(keys, docs), max_size=4).map(lambda kv: ("obj", kv)), ascii_keys=st.booleans())
def test_the_scan_finds_exactly_the_repeated_keys(doc: Any, ascii_keys: bool) -> None:
    text = write(doc, ascii_keys).encode()
    try:
        json.loads(text, object_pairs_hook=pairs)
        expected = False
    except Dup:
        expected = True
    assert _scan_duplicates(text) is expected
    assert has_duplicate_keys(text, orjson.loads(text)) is expected
