"""Red team 3: records announced (content-type header) in a format the worker does not decode, and Schema Registry
framed records: the dead letter names the cause instead of "not valid JSON"; JSON in any announced format is still
read (a mislabelled producer loses nothing)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.contracts.loader import load_contract
from streams.contracts.model import SchemaObject
from streams.formats.content_types import textual
from streams.formats.decoder import Decoder, MessageDecoder
from streams.formats.reasons import DecodeReason
from streams.pipeline.records import Message

ROOT = Path(__file__).resolve().parents[3]
AVRO = b"\x00\x00\x00\x00\x07\x02\x06abc\xf0"  # Schema Registry framing, schema id 7, an Avro body


@pytest.fixture(scope="module")
def schema() -> SchemaObject:
    return load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml").schema()


def decode(schema: SchemaObject, value: bytes, ctype: bytes | None, bulk: bool) -> list[tuple[DecodeReason, str]]:
    headers = (("Content-Type", ctype),) if ctype is not None else ()
    decoder = Decoder(schema) if bulk else MessageDecoder(schema)
    return [(d.reason, d.detail) for d in decoder.decode([Message(schema.topic, 0, 0, value, None, headers)]).dead]


@pytest.mark.parametrize("bulk", [True, False])
@pytest.mark.parametrize(
    "ctype", [b"application/avro", b"application/x-protobuf; proto=x.Y", b"application/octet-stream"]
)
def test_an_announced_binary_format_that_is_not_json_is_unsupported(
    schema: SchemaObject, ctype: bytes, bulk: bool
) -> None:
    ((reason, detail),) = decode(schema, AVRO, ctype, bulk)
    assert reason is DecodeReason.UNSUPPORTED_FORMAT
    assert ctype.decode().split(";")[0] in detail and "does not decode" in detail and detail.endswith(".")


@pytest.mark.parametrize("ctype", [b"application/avro", b"application/octet-stream", b"text/plain", None])
def test_json_announced_as_anything_is_still_read(schema: SchemaObject, ctype: bytes | None) -> None:
    value = orjson.dumps({"event_id": "e1", "amount": 3.5})
    decoded = MessageDecoder(schema).decode([Message(schema.topic, 0, 0, value, None,
                                                     (("content-type", ctype),) if ctype else ())])  # fmt: skip
    assert decoded.dead == [] and decoded.frame.get_column("amount").to_list() == [3.5]


@pytest.mark.parametrize("bulk", [True, False])
def test_an_unannounced_framed_record_says_so(schema: SchemaObject, bulk: bool) -> None:
    ((reason, detail),) = decode(schema, AVRO, None, bulk)
    assert reason is DecodeReason.NOT_UTF8
    assert "Schema Registry" in detail and "schema id 7" in detail


def test_textual_media_types() -> None:
    assert all(map(textual, [None, "application/json", "application/cloudevents+json", "text/json", "text/plain"]))
    assert not any(map(textual, ["application/avro", "application/x-protobuf", "application/octet-stream"]))
