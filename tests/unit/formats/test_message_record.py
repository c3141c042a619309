"""``MessageDecoder.record``: the one JSON object of a message exactly when ``decode`` reads the message as one JSON
object with no dead letter (the labels join reads a predictions message through it, and through ``decode`` when it
answers None)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts.loader import load_contract
from streams.contracts.model import SchemaObject
from streams.formats.decoder import MessageDecoder
from streams.formats.reasons import Format
from streams.pipeline.records import Message

ROOT = Path(__file__).resolve().parents[3]
LIMIT = 200
BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
def decoder() -> MessageDecoder:
    schema: SchemaObject = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml").schema()
    return MessageDecoder(schema, max_message_bytes=LIMIT)


def _arrow() -> bytes:
    table = pa.table({"event_id": ["e1"], "amount": [3.5]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _read_as_one_object(decoder: MessageDecoder, m: Message) -> bool:
    """``decode`` reads ``m`` as one JSON object, without a dead letter and without a byte order mark before it."""
    d = decoder.decode([m])
    return d.formats == [Format.JSON] and not d.dead and d.frame.height == 1 and not (m.value or b"").startswith(BOM)


def _check(decoder: MessageDecoder, value: bytes | None, headers: tuple[tuple[str, bytes | None], ...] = ()) -> bool:
    m = Message("t", 0, 0, value, None, headers)
    record = decoder.record(m)
    assert (record is not None) == _read_as_one_object(decoder, m)
    if record is not None:
        assert record == orjson.loads(value or b"")
    return record is not None


ONE = orjson.dumps({"event_id": "e1", "amount": 3.5})
CASES: list[tuple[bytes | None, tuple[tuple[str, bytes | None], ...], bool]] = [
    (ONE, (), True),
    (b' {"event_id": "e1"} ', (), True),
    (ONE, (("content-type", b"application/avro"),), True),  # JSON announced as anything is read as JSON
    (ONE, (("content-type", None),), True),
    (ONE, (("Content-Type", b"application/x-ndjson; charset=utf-8"),), False),  # an NDJSON message of one line
    (ONE, (("content-type", b"application/vnd.apache.arrow.stream"),), False),  # announced Arrow: BAD_ARROW
    (_arrow(), (), False),
    (ONE + b"\n" + ONE, (), False),  # NDJSON by its shape
    (BOM + ONE, (), False),
    (b'{"event_id": "e1", "event_id": "e2"}', (), False),
    (b'{"amount": NaN}', (), False),
    (b"[1]", (), False),
    (b"   ", (), False),
    (b"", (), False),
    (None, (), False),
    (b'{"event_id": "' + b"x" * LIMIT + b'"}', (), False),  # too large
]


@pytest.mark.parametrize(("value", "headers", "plain"), CASES)
def test_record_is_the_decoders_one_json_object(
    decoder: MessageDecoder, value: bytes | None, headers: tuple[tuple[str, bytes | None], ...], plain: bool
) -> None:
    assert _check(decoder, value, headers) is plain


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(value=_JSON, suffix=st.sampled_from([b"", b"\n", b"\n{}", b" x"]))
def test_record_agrees_with_decode_on_any_json(decoder: MessageDecoder, value: object, suffix: bytes) -> None:
    _check(decoder, json.dumps(value).encode() + suffix)
