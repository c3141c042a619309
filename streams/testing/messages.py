"""Kafka-free batches: records as pipeline messages, one-call pipeline runs, one undecodable message per reason."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from streams.formats.content_types import ARROW_STREAM, CONTENT_TYPE
from streams.formats.reasons import DecodeReason
from streams.pipeline.records import BatchResult, Message
from streams.testing.generators import BASE_TIMESTAMP_MS

if TYPE_CHECKING:
    from streams.contracts.model import Contract

__all__ = ["make_messages", "run_batch", "undecodable_messages"]


def make_messages(
    records: Iterable[dict[str, Any] | bytes],
    topic: str,
    partition: int = 0,
    start_offset: int = 0,
    *,
    key_field: str | None = None,
    start_timestamp_ms: int = BASE_TIMESTAMP_MS,
) -> list[Message]:
    """One Kafka :class:`Message` per record: dicts serialized with orjson, bytes taken as they are.

    Offsets count up from ``start_offset``, timestamps by 1 ms from ``start_timestamp_ms``;
    the key is the UTF-8 of ``record[key_field]`` when given.
    """
    out = []
    for i, record in enumerate(records):
        key = None
        if isinstance(record, bytes):
            value = record
        else:
            value = orjson.dumps(record)
            if key_field is not None and record.get(key_field) is not None:
                key = str(record[key_field]).encode()
        out.append(Message(topic, partition, start_offset + i, value, key, (), start_timestamp_ms + i))
    return out


def run_batch(
    contract_or_path: Contract | str | Path,
    messages: Iterable[Message],
    mode: str = "gate",
    *,
    schema: str | None = None,
    worker_id: str = "testing",
    **settings: Any,
) -> BatchResult:
    """Run one batch through the pure pipeline (no Kafka); extra keyword arguments are :class:`Settings` fields.

    One batch has no stream: its ``batch.summary`` event is on unless ``batch_events=False``.
    """
    from streams.contracts.loader import load_contract
    from streams.pipeline.binding import Binding
    from streams.settings import Mode, Settings

    contract = contract_or_path
    if isinstance(contract, (str, Path)):
        contract = load_contract(contract)
    settings.setdefault("batch_events", True)
    binding = Binding(contract, contract.schema(schema), Settings(mode=Mode(mode), **settings))
    return binding.process(list(messages), worker_id=worker_id)


def undecodable_messages(
    topic: str = "features.card-transactions.v1",
    *,
    partition: int = 0,
    start_offset: int = 0,
    max_message_bytes: int = 1_048_576,
) -> Iterator[tuple[DecodeReason, Message]]:
    """One message per :class:`DecodeReason`, paired with the reason the decoder must give."""
    arrow = ((CONTENT_TYPE, ARROW_STREAM.encode()),)
    pad = max_message_bytes
    examples: list[tuple[DecodeReason, bytes, tuple[tuple[str, bytes], ...]]] = [
        (DecodeReason.EMPTY, b"", ()),
        (DecodeReason.TOO_LARGE, b'{"padding": "' + b"x" * pad + b'"}', ()),
        (DecodeReason.NOT_UTF8, b'{"merchant_id": "caf\xe9 cr\xe8me"}', ()),
        (DecodeReason.NOT_JSON, b"event_id=42;amount=3.50", ()),
        (DecodeReason.NOT_OBJECT, b'[{"event_id": "a"}, {"event_id": "b"}]', ()),
        (DecodeReason.TRUNCATED, b'{"event_id": "3f1c2a9e-0b7d-4c1e-9', ()),
        (DecodeReason.DUPLICATE_KEY, b'{"event_id": "a", "amount": 1.0, "amount": -1.0}', ()),
        (DecodeReason.TOO_DEEP, b'{"event_id": ' + b"[" * 1100 + b"]" * 1100 + b"}", ()),
        (DecodeReason.UNSUPPORTED_FORMAT, b"\x00\x00\x00\x00\x07\x02\x06abc", ((CONTENT_TYPE, b"application/avro"),)),
        (DecodeReason.BAD_ARROW, b"\xff\xff\xff\xff\x10\x00\x00\x00not an arrow schema", arrow),
    ]
    for i, (reason, value, headers) in enumerate(examples):
        ts = BASE_TIMESTAMP_MS + i
        yield reason, Message(topic, partition, start_offset + i, value, None, headers, ts)
