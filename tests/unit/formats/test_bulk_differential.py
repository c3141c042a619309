"""The bulk decoder against the per-message decoder (the reference): equal results on any mix of messages.

Generated batches mix valid records (as orjson writes them, in the contract's or another key order) with every
way a message can differ from its canonical form: missing, extra, null and wrong-typed fields (``12`` for a string,
``"12"``, ``517.0`` and huge integers for an integer, ``true`` for a number, objects and arrays for scalars), unicode
and escapes, other serializers (spaces, ``\\uXXXX``), duplicate keys, truncated or invalid bytes, line breaks, byte
order marks, non-objects, empty and too large values, NDJSON and Arrow messages. The bulk reader is made to try
every batch (no minimum size, no cooldown) and to bisect failing reads down to small leaves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.contracts.loader import load_contract
from streams.contracts.model import SchemaObject
from streams.formats.bulk import BulkReader
from streams.formats.columns import Kind, kind_of
from streams.formats.content_types import ARROW_STREAM, CONTENT_TYPE, NDJSON
from streams.formats.decoder import Decoder, MessageDecoder
from streams.formats.reasons import Decoded
from streams.pipeline.records import Message
from streams.testing import generate_feature_records, generate_prediction_records, make_messages

ROOT = Path(__file__).resolve().parents[3]
LIMIT = 4096

CARD = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml").schema()
PREDICTIONS = load_contract(ROOT / "contracts" / "fraud_predictions.odcs.yaml").schema()
BASES = {
    CARD.name: generate_feature_records(40, seed=3).records,
    PREDICTIONS.name: generate_prediction_records(40, seed=3).records,
}


def bulk_decoder(schema: SchemaObject, leaf: int) -> Decoder:
    d = Decoder(schema, max_message_bytes=LIMIT)
    assert d._bulk is not None
    d._bulk.min_batch, d._bulk.leaf, d._bulk.pause = 1, leaf, 0
    return d


def assert_same(new: Decoded, ref: Decoded) -> None:
    assert new.frame.schema == ref.frame.schema
    assert new.frame.equals(ref.frame)  # values, nulls and row order
    assert new.message.to_list() == ref.message.to_list()
    assert new.line.to_list() == ref.line.to_list()
    assert new.formats == ref.formats
    assert new.dead == ref.dead
    assert new.lines == ref.lines
    assert new.tables.keys() == ref.tables.keys()
    assert all(new.tables[k].equals(ref.tables[k]) for k in ref.tables)
    assert new.mismatches.equals(ref.mismatches)
    assert new.unknown_fields == ref.unknown_fields
    assert new.missing_fields == ref.missing_fields
    assert new.type_mismatches == ref.type_mismatches
    assert new.irregular == ref.irregular


# -- generated messages ------------------------------------------------------------------------------

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([2**63, -(2**63) - 1, 10**30, 0, -1, 517]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([517.0, -0.0, 12.5, 1e300, 5e-324, 1e16, 0.1, 2.0**63]),
    text,
    st.sampled_from(["12", "true", "", "é\u2028😀", '"}\n{', "\\", "2025-03-01T00:00:00Z"]),
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=4
)


def compact(x: Any) -> bytes:
    """``x`` as orjson writes it; an integer beyond 64 bits, which orjson refuses, by the standard library."""
    try:
        return orjson.dumps(x)
    except TypeError:
        return json.dumps(x, ensure_ascii=False, separators=(",", ":")).encode()


@st.composite
def record_value(draw: st.DrawFn, schema: SchemaObject) -> bytes:
    """A record of ``schema`` changed in some of its fields, then written by one of several serializers."""
    rec: dict[str, Any] = dict(draw(st.sampled_from(BASES[schema.name])))
    names = [f.name for f in schema.fields]
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(names))
        action = draw(st.sampled_from(["drop", "null", "set", "extra", "typed"]))
        if action == "drop":
            rec.pop(name, None)
        elif action == "null":
            rec[name] = None
        elif action == "set":
            rec[name] = draw(values)
        elif action == "extra":
            rec[draw(st.sampled_from(["zz", "extra", "Event_ID", ""]))] = draw(values)
        else:  # a value of the field's own kind, to keep many records valid
            kind = kind_of(next(f.dtype for f in schema.fields if f.name == name))
            rec[name] = draw(
                {
                    Kind.INT: st.integers(-(2**40), 2**40),
                    Kind.FLOAT: st.floats(-1e6, 1e6, allow_nan=False),
                    Kind.BOOL: st.booleans(),
                }.get(kind, text)
            )
    if draw(st.booleans()):
        keys = draw(st.permutations(list(rec)))
        rec = {k: rec[k] for k in keys}
    writer = draw(st.sampled_from(["orjson"] * 6 + ["spaces", "ascii", "indent"]))
    if writer == "orjson":
        return compact(rec)
    if writer == "spaces":
        return json.dumps(rec, ensure_ascii=False).encode()
    if writer == "ascii":
        return json.dumps(rec, separators=(",", ":")).encode()
    return json.dumps(rec, indent=1).encode()


@st.composite
def message_value(draw: st.DrawFn, schema: SchemaObject) -> tuple[bytes | None, tuple[tuple[str, bytes], ...]]:
    v = draw(record_value(schema))
    kind = draw(st.sampled_from(["as is"] * 12 + ["dup", "cut", "insert", "bom", "wrap", "scalar", "empty",
                                                 "large", "ndjson", "ndjson header", "deep", "arrow"]))  # fmt: skip
    if kind == "dup":  # the first key again, at the front
        first = next(iter(orjson.loads(v)), "event_id") if v.startswith(b"{") else "event_id"
        return b"{" + compact(first) + b":" + compact(draw(values)) + b"," + v[1:], ()
    if kind == "cut":
        return v[: draw(st.integers(0, len(v) - 1))], ()
    if kind == "insert":
        at = draw(st.integers(0, len(v)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\n", b"\r", b" ", b"}", b",", b"{", b'"', b"\x00", b"\t"]))
        return v[:at] + junk + v[at:], ()
    if kind == "bom":
        return b"\xef\xbb\xbf" + v, ()
    if kind == "wrap":
        return b"[" + v + b"]", ()
    if kind == "scalar":
        return draw(st.sampled_from([b"12", b'"x"', b"null", b"true", b"[]", b"  ", b"{}", b"{ }"])), ()
    if kind == "empty":
        return draw(st.sampled_from([b"", None])), ()
    if kind == "large":
        return b'{"pad":"' + b"x" * LIMIT + b'"}', ()
    if kind == "ndjson":
        return v + b"\n" + draw(record_value(schema)) + draw(st.sampled_from([b"", b"\n", b"\r\n"])), ()
    if kind == "ndjson header":
        return v, ((CONTENT_TYPE, NDJSON.encode()),)
    if kind == "deep":
        return b'{"event_id":' + b"[" * 1100 + b"]" * 1100 + v[1:] if v.startswith(b"{") else v, ()
    if kind == "arrow":
        row = orjson.loads(orjson.dumps(BASES[schema.name][0]))
        sink = pa.BufferOutputStream()
        table = pl.DataFrame([row]).to_arrow()
        with pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
        return sink.getvalue().to_pybytes(), draw(st.sampled_from([(), ((CONTENT_TYPE, ARROW_STREAM.encode()),)]))
    return v, ()


@st.composite
def batches(draw: st.DrawFn) -> tuple[SchemaObject, list[Message]]:
    schema = draw(st.sampled_from([CARD, PREDICTIONS]))
    # some batches mostly clean (what the bulk path is for), some mostly changed, in any mix
    clean = draw(st.sampled_from([0, 5, 9]))  # in tenths
    unchanged = st.sampled_from(BASES[schema.name]).map(lambda r: (orjson.dumps(r), ()))
    pick = st.integers(0, 9).flatmap(lambda k: unchanged if k < clean else message_value(schema))
    specs = draw(st.lists(pick, max_size=50))
    return schema, [Message(schema.topic, 0, i, v, None, h, 1_740_787_200_000 + i) for i, (v, h) in enumerate(specs)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=batches(), leaf=st.sampled_from([1, 3, 64]))
def test_bulk_decode_equals_the_per_message_decoder(batch: tuple[SchemaObject, list[Message]], leaf: int) -> None:
    schema, messages = batch
    assert_same(
        bulk_decoder(schema, leaf).decode(messages), MessageDecoder(schema, max_message_bytes=LIMIT).decode(messages)
    )


# -- the bulk path is taken, and only where it is exact ------------------------------------------------


def reader_for(schema: SchemaObject) -> BulkReader:
    reader = BulkReader([f.name for f in schema.fields], [kind_of(f.dtype) for f in schema.fields])
    reader.min_batch = 1
    return reader


@pytest.mark.parametrize("schema", [CARD, PREDICTIONS], ids=["card", "predictions"])
def test_clean_orjson_batches_are_proven_whole_in_bulk(schema: SchemaObject) -> None:
    gen = generate_feature_records if schema is CARD else generate_prediction_records
    messages = make_messages(gen(500, seed=7).records, schema.topic)
    reader = reader_for(schema)
    frame, proven = reader.read(messages, LIMIT)
    assert proven == list(range(500))
    assert frame.equals(MessageDecoder(schema).decode(messages).frame)


def test_a_different_key_order_is_learnt_and_still_proven() -> None:
    recs = [dict(reversed(r.items())) for r in generate_prediction_records(100, seed=1).records]
    reader = reader_for(PREDICTIONS)
    frame, proven = reader.read(make_messages(recs, PREDICTIONS.topic), LIMIT)
    assert len(proven) == 100 and frame.columns == [f.name for f in PREDICTIONS.fields]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model_name", 12),  # a number in a string field: polars reads "12"
        ("latency_ms", True),  # a boolean in a number field
        ("score", None),  # null: proven only as the explicit null it is
        ("event_id", "\u00e9"),  # raw UTF-8 is proven; see below for the escaped form
    ],
)
def test_rows_that_read_leniently_are_not_proven_unless_exact(field: str, value: Any) -> None:
    recs = generate_prediction_records(40, seed=2).records
    recs[5] = {**recs[5], field: value}
    messages = make_messages(recs, PREDICTIONS.topic)
    reader = reader_for(PREDICTIONS)
    _, proven = reader.read(messages, LIMIT)
    exact = value is None or isinstance(value, str)
    assert (5 in proven) is exact and len(proven) == 40 - (not exact)


@pytest.mark.parametrize(
    "value",
    [
        b'{"prediction_id":"p","prediction_id":"q"}',  # a duplicate key
        b'{"prediction_id":"\\u00e9"}',  # an escape polars would write as the raw character
    ],
)
def test_duplicate_keys_and_escapes_are_left_to_the_per_message_decoder(value: bytes) -> None:
    recs = [orjson.dumps(r) for r in generate_prediction_records(40, seed=2).records]
    base = orjson.loads(recs[3])
    base.pop("prediction_id")
    recs[3] = value[:-1] + b"," + orjson.dumps(base)[1:]
    reader = reader_for(PREDICTIONS)
    _, proven = reader.read(make_messages(recs, PREDICTIONS.topic), LIMIT)
    assert 3 not in proven and len(proven) == 39


def test_a_failing_read_is_bisected_and_the_rest_still_read_in_bulk() -> None:
    recs = [orjson.dumps(r) for r in generate_prediction_records(400, seed=4).records]
    recs[123] = recs[123][:-5] + b"nul}"  # not JSON: polars fails the whole read
    reader = reader_for(PREDICTIONS)
    _, proven = reader.read(make_messages(recs, PREDICTIONS.topic), LIMIT)
    assert 123 not in proven and len(proven) >= 400 - reader.leaf


def test_after_a_batch_it_could_not_prove_the_reader_pauses_then_tries_again() -> None:
    records = generate_prediction_records(60, seed=5).records
    spaced = make_messages([json.dumps(r).encode() for r in records], PREDICTIONS.topic)  # ", " and ": ": never proven
    compact = make_messages(records, PREDICTIONS.topic)
    reader = reader_for(PREDICTIONS)
    reader.pause = 2
    assert reader.read(spaced, LIMIT)[1] == [] and reader.cooldown == 2
    assert reader.read(compact, LIMIT)[1] == [] and reader.read(compact, LIMIT)[1] == []  # paused: not even tried
    assert reader.read(compact, LIMIT)[1] == list(range(60)) and reader.cooldown == 0


def test_a_batch_is_read_before_its_shape_is_checked_only_after_a_batch_of_that_shape() -> None:
    """``BulkReader.shaped``: after a batch of one ``{...}`` line per message the next is read first and only the
    values the read does not prove are checked for that shape. A batch that breaks it (a value of two lines, so that
    the rows still number the messages; an empty value; a carriage return) is decoded as the reference decodes it,
    and the next batch is shape-checked first, until one has the shape again (a wrong-typed one-line object keeps
    it)."""
    records = generate_prediction_records(30, seed=6).records
    compact = [orjson.dumps(r) for r in records]
    two_lines = compact[:]
    two_lines[4] = compact[4] + b"\n" + compact[5]  # NDJSON without its header: 31 lines for 30 messages...
    two_lines[9] = b""  # ...and an empty value: 30 rows read, none of them proven past message 4
    returns = compact[:]
    returns[7] = compact[7] + b"\r"
    wrong = compact[:]  # a one-line object not proven (a number in a string field): the shape holds
    wrong[3] = orjson.dumps({**records[3], "model_name": 12})
    d = bulk_decoder(PREDICTIONS, leaf=4)
    reader = d._bulk
    assert reader is not None and reader.shaped
    for values, shaped in ((compact, True), (two_lines, False), (compact, True), (wrong, True), (returns, False),
                           (returns, False), (wrong, True), (compact, True)):  # fmt: skip
        messages = make_messages(values, PREDICTIONS.topic)
        assert_same(d.decode(messages), MessageDecoder(PREDICTIONS, max_message_bytes=LIMIT).decode(messages))
        assert reader.shaped is shaped
