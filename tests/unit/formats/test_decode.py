"""Message values to records: every format, every dead-letter reason, type mismatches and drift counts."""

from __future__ import annotations

import gc
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pytest

from streams.contracts.loader import load_contract
from streams.contracts.model import SchemaObject
from streams.formats.decoder import Decoder
from streams.formats.reasons import DecodeReason, Format
from streams.pipeline.headers import ARROW_STREAM, CONTENT_TYPE, NDJSON
from streams.pipeline.records import Message
from streams.testing import (
    FEATURE_SCHEMA,
    Fault,
    generate_feature_frame,
    generate_feature_records,
    make_messages,
    undecodable_messages,
)

ROOT = Path(__file__).resolve().parents[3]
TOPIC = "features.card-transactions.v1"


@pytest.fixture(scope="module")
def schema() -> SchemaObject:
    return load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml").schema()


@pytest.fixture
def decoder(schema: SchemaObject) -> Decoder:
    return Decoder(schema, max_message_bytes=1_048_576)


def records(n: int = 5, seed: int = 1) -> list[dict]:
    return generate_feature_records(n, seed=seed).records


def msg(value: bytes | None, offset: int = 0, headers: tuple[tuple[str, bytes], ...] = ()) -> Message:
    return Message(TOPIC, 0, offset, value, None, headers, 1_740_787_200_000 + offset)


def arrow_stream(df: pl.DataFrame) -> bytes:
    sink = pa.BufferOutputStream()
    table = df.to_arrow()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


WIRE = {
    name: pl.Int64
    if dt.is_integer()
    else pl.Float64
    if dt.is_float()
    else pl.Boolean
    if dt == pl.Boolean
    else pl.String
    for name, dt in FEATURE_SCHEMA.items()
}


# --- one JSON object per message ---------------------------------------------------------------


def test_json_objects_become_one_row_each_with_wire_dtypes_and_provenance(decoder: Decoder) -> None:
    recs = records(5)
    out = decoder.decode(make_messages(recs, TOPIC))
    assert out.frame.schema == pl.Schema(WIRE)
    assert out.frame.height == 5 and not out.dead and not out.drifted
    assert out.formats == [Format.JSON] * 5
    assert out.message.to_list() == [0, 1, 2, 3, 4] and out.line.to_list() == [0] * 5
    assert out.frame.row(2, named=True) == recs[2]


def test_clean_generated_batch_round_trips_exactly(decoder: Decoder) -> None:
    recs = records(300, seed=9)
    out = decoder.decode(make_messages(recs, TOPIC))
    expected = pl.DataFrame(recs, schema=WIRE, orient="row")
    assert out.frame.equals(expected)
    assert out.mismatches.is_empty()


def test_pretty_printed_object_is_one_record_not_ndjson(decoder: Decoder) -> None:
    value = orjson.dumps(records(1)[0], option=orjson.OPT_INDENT_2)
    out = decoder.decode([msg(value)])
    assert out.formats == [Format.JSON] and out.frame.height == 1


def test_byte_order_mark_is_tolerated(decoder: Decoder) -> None:
    out = decoder.decode([msg(b"\xef\xbb\xbf" + orjson.dumps(records(1)[0]))])
    assert out.frame.height == 1 and not out.dead


# --- dead letters -----------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", list(DecodeReason))
def test_every_decode_error_has_an_example_that_gets_it(decoder: Decoder, reason: DecodeReason) -> None:
    examples = dict(undecodable_messages(TOPIC))
    out = decoder.decode([examples[reason]])
    assert [(d.message, d.reason, d.line) for d in out.dead] == [(0, reason, None)]
    assert out.frame.height == 0 and out.formats == [None]
    assert out.dead[0].detail.endswith(".") and len(out.dead[0].detail) < 400


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, DecodeReason.EMPTY),
        (b"  \n\t ", DecodeReason.EMPTY),
        (b"42", DecodeReason.NOT_OBJECT),
        (b'"just a string"', DecodeReason.NOT_OBJECT),
        (b"null", DecodeReason.NOT_OBJECT),
        (b'{"a": 1,}', DecodeReason.NOT_JSON),
        (b"{'a': 1}", DecodeReason.NOT_JSON),
        (b'{"a": NaN}', DecodeReason.NOT_JSON),
        (b'{"a": [1, 2', DecodeReason.TRUNCATED),
        (b"\x00\x01\x02\x80\x81", DecodeReason.NOT_UTF8),
        (b"ARROW1\x00\x00garbage", DecodeReason.BAD_ARROW),
    ],
)
def test_dead_letter_reasons(decoder: Decoder, value: bytes | None, reason: DecodeReason) -> None:
    out = decoder.decode([msg(value)])
    assert [d.reason for d in out.dead] == [reason]


def test_too_large_uses_the_configured_limit(schema: SchemaObject) -> None:
    value = orjson.dumps(records(1)[0])
    small = Decoder(schema, max_message_bytes=len(value) - 1)
    assert [d.reason for d in small.decode([msg(value)]).dead] == [DecodeReason.TOO_LARGE]
    assert not Decoder(schema, max_message_bytes=len(value)).decode([msg(value)]).dead


def test_dead_letters_do_not_disturb_the_other_records(decoder: Decoder) -> None:
    recs = records(4)
    bad = [m.value or b"" for _, m in undecodable_messages(TOPIC)]
    values = [orjson.dumps(recs[0]), *bad, *(orjson.dumps(r) for r in recs[1:])]
    out = decoder.decode(make_messages(values, TOPIC))
    assert out.frame.height == 4
    assert sorted(d.message for d in out.dead) == list(range(1, 1 + len(bad)))
    assert out.message.to_list() == [0, 1 + len(bad), 2 + len(bad), 3 + len(bad)]


# --- NDJSON ---------------------------------------------------------------------------------------------


def test_ndjson_detected_by_content_with_line_provenance(decoder: Decoder) -> None:
    recs = records(3)
    value = b"\n".join(orjson.dumps(r) for r in recs) + b"\n"
    out = decoder.decode([msg(orjson.dumps(records(1, seed=5)[0])), msg(value, 1)])
    assert out.formats == [Format.JSON, Format.NDJSON]
    assert out.message.to_list() == [0, 1, 1, 1] and out.line.to_list() == [0, 0, 1, 2]
    assert out.frame.slice(1).to_dicts() == recs


def test_ndjson_by_header_even_with_one_line_and_crlf_and_blank_lines(decoder: Decoder) -> None:
    recs = records(2)
    value = orjson.dumps(recs[0]) + b"\r\n\r\n" + orjson.dumps(recs[1]) + b"\r\n"
    out = decoder.decode([msg(value, headers=((CONTENT_TYPE, NDJSON.encode()),))])
    assert out.formats == [Format.NDJSON] and out.line.to_list() == [0, 2]
    one = decoder.decode([msg(orjson.dumps(recs[0]), headers=(("Content-Type", b"application/x-ndjson; q=1"),))])
    assert one.formats == [Format.NDJSON] and one.frame.height == 1


def test_ndjson_bad_lines_are_dead_lettered_alone(decoder: Decoder) -> None:
    recs = records(3)
    lines = [
        orjson.dumps(recs[0]),
        b'{"broken": ',
        b"[1, 2]",
        orjson.dumps(recs[1]),
        b"not json",
        orjson.dumps(recs[2]),
    ]
    out = decoder.decode([msg(b"\n".join(lines))])
    assert out.formats == [Format.NDJSON] and out.line.to_list() == [0, 3, 5]
    got = [(d.line, d.reason) for d in out.dead]
    assert got == [(1, DecodeReason.TRUNCATED), (2, DecodeReason.NOT_OBJECT), (4, DecodeReason.NOT_JSON)]
    assert out.lines[0][4] == b"not json"


def test_multiline_garbage_is_one_dead_message_not_ndjson(decoder: Decoder) -> None:
    out = decoder.decode([msg(b"hello\nworld"), msg(b'{\n  "event_id": "x",\n', 1)])
    assert [(d.line, d.reason) for d in out.dead] == [(None, DecodeReason.NOT_JSON), (None, DecodeReason.TRUNCATED)]


def test_ndjson_without_records_is_empty(decoder: Decoder) -> None:
    out = decoder.decode([msg(b"\n\n", headers=((CONTENT_TYPE, NDJSON.encode()),))])
    assert [d.reason for d in out.dead] == [DecodeReason.EMPTY]


# --- Arrow IPC -------------------------------------------------------------------------------------------


def test_arrow_stream_by_magic_and_by_header(decoder: Decoder) -> None:
    frame = generate_feature_frame(7, seed=3)
    value = arrow_stream(frame)
    out = decoder.decode([msg(value), msg(value, 1, ((CONTENT_TYPE, ARROW_STREAM.encode()),))])
    assert out.formats == [Format.ARROW, Format.ARROW] and out.frame.height == 14
    assert out.line.to_list() == list(range(7)) * 2 and out.mismatches.is_empty() and not out.drifted
    assert out.frame.schema == pl.Schema(WIRE)
    # timestamps travel as ISO strings the engine parses back to the declared Datetime
    back = out.frame.get_column("event_ts").head(7).str.to_datetime(time_unit="ms").dt.convert_time_zone("UTC")
    assert back.to_list() == frame.get_column("event_ts").to_list()
    assert out.tables[0].num_rows == 7


def test_arrow_file_format_and_mixed_batches(decoder: Decoder) -> None:
    frame = generate_feature_frame(3, seed=4)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, frame.to_arrow().schema) as w:
        w.write_table(frame.to_arrow())
    out = decoder.decode([msg(orjson.dumps(records(1)[0])), msg(sink.getvalue().to_pybytes(), 1)])
    assert out.formats == [Format.JSON, Format.ARROW] and out.message.to_list() == [0, 1, 1, 1]


def test_arrow_drift_and_wrong_typed_columns(decoder: Decoder) -> None:
    frame = (
        generate_feature_frame(4, seed=5)
        .drop("ip_country")
        .with_columns(
            pl.lit("x").alias("promo_code"),
            pl.col("txn_count_1h").cast(pl.String),  # strings for an integer: every value mismatches
            pl.col("card_hash").str.len_bytes(),  # numbers for a (restricted) string
            pl.Series("account_age_days", [1, None, 2**40, 3], dtype=pl.Int64),  # the engine narrows to int32
        )
    )
    out = decoder.decode([msg(arrow_stream(frame))])
    assert out.unknown_fields == {"promo_code": 4} and out.missing_fields == {"ip_country": 4}
    assert out.type_mismatches == {"txn_count_1h": 4, "card_hash": 4}
    assert out.frame.get_column("txn_count_1h").null_count() == 4
    assert set(out.mismatches.filter(pl.col("column") == "card_hash").get_column("value")) == {"[REDACTED]"}
    assert out.frame.get_column("account_age_days").to_list() == [1, None, 2**40, 3]


def test_empty_arrow_stream_is_empty(decoder: Decoder) -> None:
    out = decoder.decode([msg(arrow_stream(generate_feature_frame(2, seed=1).head(0)))])
    assert [d.reason for d in out.dead] == [DecodeReason.EMPTY]


# --- type mismatches and drift --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("txn_count_24h", "12", '"12"'),  # a string for an integer is not coerced
        ("hour_of_day", 13.5, "13.5"),  # a fraction for an integer
        ("seconds_since_last_txn", 2**64 - 1, str(2**64 - 1)),  # beyond int64
        ("txn_count_1h", True, "true"),  # a boolean for an integer
        ("amount", False, "false"),  # a boolean for a number
        ("amount", "42.10", '"42.10"'),
        ("merchant_id", 12345, "12345"),  # a number for a string
        ("channel", {"kind": "pos"}, '{"kind":"pos"}'),
        ("card_present", "true", '"true"'),
        ("event_ts", 1_740_787_200_000, "1740787200000"),  # epoch millis for an ISO timestamp
        ("card_hash", 1234, "[REDACTED]"),  # classified: the value never leaves the decoder
        ("customer_email", ["a@b.example"], "[REDACTED]"),
    ],
)
def test_wrong_json_types_become_null_and_a_mismatch_row(
    decoder: Decoder, column: str, value: object, shown: str
) -> None:
    recs = records(3)
    recs[1][column] = value
    out = decoder.decode(make_messages(recs, TOPIC))
    assert out.frame.height == 3 and out.frame.schema == pl.Schema(WIRE)
    assert out.frame.get_column(column)[1] is None
    assert out.mismatches.rows() == [(1, column, shown)]
    assert out.type_mismatches == {column: 1}


def test_ints_are_fine_for_number_fields(decoder: Decoder) -> None:
    recs = records(2)
    recs[0]["amount"] = 12
    out = decoder.decode(make_messages(recs, TOPIC))
    assert out.mismatches.is_empty() and out.frame.get_column("amount")[0] == 12.0


def test_drift_counts_are_exact(decoder: Decoder) -> None:
    batch = generate_feature_records(400, seed=11, faults={"missing_field": 0.05, "unknown_field": 0.05})
    out = decoder.decode(make_messages(batch.records, TOPIC))
    assert sum(out.unknown_fields.values()) == batch.count(Fault.UNKNOWN_FIELD) == 20
    assert sum(out.missing_fields.values()) == batch.count(Fault.MISSING_FIELD) == 20
    assert set(out.unknown_fields) <= {"promo_code", "risk_score_v2"}
    # explicit nulls are not missing fields
    assert "customer_email" not in out.missing_fields


def test_record_with_missing_and_unknown_field_of_same_count(decoder: Decoder) -> None:
    rec = records(1)[0]
    del rec["merchant_id"]
    rec["merchant"] = "m-1"
    out = decoder.decode(make_messages([rec], TOPIC))
    assert out.missing_fields == {"merchant_id": 1} and out.unknown_fields == {"merchant": 1}
    assert out.frame.get_column("merchant_id").to_list() == [None]


def test_gc_state_is_restored(decoder: Decoder) -> None:
    assert gc.isenabled()
    decoder.decode(make_messages(records(3), TOPIC))
    assert gc.isenabled()
    gc.disable()
    try:
        decoder.decode(make_messages(records(3), TOPIC))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_empty_batch(decoder: Decoder) -> None:
    out = decoder.decode([])
    assert out.frame.height == 0 and out.frame.schema == pl.Schema(WIRE) and out.formats == []
