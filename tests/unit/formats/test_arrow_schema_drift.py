"""Arrow IPC messages report schema drift per row, as JSON records do: the same records encoded either way give
the same undeclared / missing field counts and the same irregular rows (what windows tally, with offsets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from streams.contracts.loader import load_contract
from streams.formats.decoder import Decoder
from streams.formats.reasons import Decoded, Format
from streams.pipeline.records import Message
from streams.testing import generate_feature_records

ROOT = Path(__file__).resolve().parents[3]
TOPIC = "features.card-transactions.v1"


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    return Decoder(
        load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml").schema(), max_message_bytes=1 << 20
    )


def msg(value: bytes, offset: int) -> Message:
    return Message(TOPIC, 0, offset, value, None, (), 1_740_787_200_000 + offset)


def arrow(rows: list[dict[str, Any]]) -> bytes:
    table = pa.Table.from_pylist(rows)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def groups() -> list[list[dict[str, Any]]]:
    """Runs of records of one shape (an Arrow table has one set of columns): clean, two lacking ip_country,
    three with an undeclared promo_code, clean, one lacking channel and carrying promo_code."""
    recs = generate_feature_records(9, seed=11).records
    drop = lambda r, *names: {k: v for k, v in r.items() if k not in names}  # noqa: E731
    return [
        recs[0:1],
        [drop(r, "ip_country") for r in recs[1:3]],
        [r | {"promo_code": "SPRING25"} for r in recs[3:6]],
        recs[6:8],
        [drop(recs[8], "channel") | {"promo_code": "X"}],
    ]


def decode_json(decoder: Decoder) -> Decoded:
    flat = [r for g in groups() for r in g]
    return decoder.decode([msg(orjson.dumps(r), i) for i, r in enumerate(flat)])


def test_arrow_tables_count_schema_drift_per_row_as_json_records_do(decoder: Decoder) -> None:
    js = decode_json(decoder)
    ar = decoder.decode([msg(arrow(g), i) for i, g in enumerate(groups())])
    assert ar.formats == [Format.ARROW] * 5 and ar.frame.height == js.frame.height == 9
    assert js.unknown_fields == ar.unknown_fields == {"promo_code": 4}
    assert js.missing_fields == ar.missing_fields == {"ip_country": 2, "channel": 1}
    expected = [(1, (), ("ip_country",)), (2, (), ("ip_country",))]
    expected += [(row, ("promo_code",), ()) for row in (3, 4, 5)] + [(8, ("promo_code",), ("channel",))]
    assert js.irregular == ar.irregular == expected
    # each irregular row is the right record: its message (Kafka offset) and row within the table
    assert [int(ar.message[row]) for row, _, _ in ar.irregular] == [1, 1, 2, 2, 2, 4]
    assert [int(ar.line[row]) for row, _, _ in ar.irregular] == [0, 1, 0, 1, 2, 0]


def test_arrow_rows_after_json_rows_and_other_tables_are_numbered_in_the_decoded_frame(decoder: Decoder) -> None:
    recs = generate_feature_records(6, seed=12).records
    extra = [r | {"risk_score_v2": 0.4} for r in recs[3:5]]
    batch = [
        msg(arrow(recs[0:2]), 0),  # clean table: rows 2-3 of the frame (the JSON rows come first)
        msg(orjson.dumps(recs[2] | {"promo_code": "A"}), 1),  # JSON row 0
        msg(arrow(extra), 2),  # rows 4-5
        msg(orjson.dumps(recs[5]), 3),  # JSON row 1
    ]
    out = decoder.decode(batch)
    assert out.irregular == [(0, ("promo_code",), ()), (4, ("risk_score_v2",), ()), (5, ("risk_score_v2",), ())]
    assert out.message.to_list() == [1, 3, 0, 0, 2, 2]
    assert out.unknown_fields == {"promo_code": 1, "risk_score_v2": 2}
