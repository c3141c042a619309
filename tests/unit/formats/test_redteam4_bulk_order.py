"""The bulk reader learns the producers' key order from a message it reads in bulk only (red team 4).

The read-first path (after a batch of one ``{...}`` line per message) learnt the order from the batch's first
message before checking the batch's shape. When the batch turned out not to have it, the order stayed learnt from a
message the reader never read (a pretty-printed record, a record with a trailing line break): the next batch, whose
first message teaches nothing (a record lacking a field), was read in that foreign order, proved nothing and paused
the bulk reads, where the reader at ccc1f8a proved every regular record of it.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from streams.contracts.loader import load_contract
from streams.formats.decoder import Decoder
from streams.pipeline.records import Message
from streams.testing import generate_prediction_records

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = load_contract(ROOT / "contracts" / "fraud_predictions.odcs.yaml").schema()


def _messages(values: list[bytes]) -> list[Message]:
    return [Message("t", 0, i, v) for i, v in enumerate(values)]


def test_a_batch_not_read_in_bulk_teaches_no_key_order() -> None:
    records = generate_prediction_records(12, seed=5).records
    decoder = Decoder(SCHEMA)
    reader = decoder._bulk
    assert reader is not None
    reader.min_batch = 4
    compact = [orjson.dumps(r) for r in records]
    first = decoder.decode(_messages(compact[:6]))  # one compact line per message: the order learnt, the shape kept
    assert first.frame.height == 6 and reader.shaped
    learnt = reader.order
    # pretty-printed, keys reversed: read message by message (no message has the shape)
    reversed_pretty = [orjson.dumps(dict(reversed(list(r.items()))), option=orjson.OPT_INDENT_2) for r in records[:6]]
    decoder.decode(_messages(reversed_pretty))
    assert reader.order == learnt
    # a batch whose first record lacks a field, then regular records: those are proven in bulk
    lacking = dict(records[6])
    lacking.pop(next(iter(lacking)))
    frame, proven = reader.read(_messages([orjson.dumps(lacking), *compact[7:12]]), 1 << 20)
    assert proven == [1, 2, 3, 4, 5] and frame.height == 5
    assert reader.cooldown == 0
