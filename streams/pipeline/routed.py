"""What :class:`~streams.pipeline.binding.Binding` builds while it routes a batch: its outputs, counts and
state records (:class:`Routed`), a batch's slice of its poll (:data:`Given`), and the re-encoding of some
records of a multi-record message (:func:`encode_positions`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from streams.formats.reasons import Decoded, Format
from streams.pipeline.records import OutRecord
from streams.validation.report import ValidationReport

__all__ = ["Given", "Routed", "encode_positions"]


@dataclass(slots=True)
class Routed:
    validated: list[OutRecord] = field(default_factory=list)
    quarantined: list[OutRecord] = field(default_factory=list)
    dead: list[OutRecord] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"valid": 0, "quarantined": 0, "dead_lettered": 0})
    report: ValidationReport | None = None
    decoded: Decoded | None = None
    decode_seconds: float = 0.0
    validate_seconds: float = 0.0
    state: list[OutRecord] = field(default_factory=list)  # records of the stages (stream-time state)
    #: with ``track`` (a poll of several partitions, see ``Binding.process_poll``): the source partition of
    #: every output record, and the counts per source partition
    track: bool = False
    validated_parts: list[int] = field(default_factory=list)
    quarantined_parts: list[int] = field(default_factory=list)
    dead_parts: list[int] = field(default_factory=list)
    part_counts: dict[int, dict[str, int]] = field(default_factory=dict)


#: a batch's slice of its poll's decode and validation, its share of their times, and the records its stages gave
#: it when they amended the poll's verdict at once (``Binding._process_slices``; None: the stages run on the slice)
Given = tuple[Decoded, ValidationReport | None, float, float, list[OutRecord] | None]


def encode_positions(decoded: Decoded, i: int, positions: list[int], source: bytes | None = None) -> bytes:
    """Records ``positions`` of multi-record message ``i``, re-encoded in its format; the message's own bytes
    ``source`` (zero-copy, as a JSON record is forwarded) when they are every record of it and it had no undecodable
    line. An Arrow file message's records are re-encoded as an Arrow file, a stream's as a stream."""
    if source is not None and _whole(decoded, i, positions):
        return source
    if decoded.formats[i] is Format.NDJSON:
        lines = decoded.lines[i]
        return b"\n".join(lines[p] for p in positions) + b"\n"
    table = decoded.tables[i].take(pa.array(positions, type=pa.int64()))
    sink = pa.BufferOutputStream()
    file = source is not None and source.startswith(b"ARROW1")
    with (pa.ipc.new_file if file else pa.ipc.new_stream)(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _whole(decoded: Decoded, i: int, positions: list[int]) -> bool:
    """``positions`` are every record of message ``i`` and none of its lines was dead-lettered."""
    if decoded.formats[i] is Format.NDJSON:
        blanks = b" \t\r\n"
        records = sum(1 for line in decoded.lines[i] if line.strip(blanks))
        return len(positions) == records and not any(d.message == i for d in decoded.dead)
    return len(positions) == decoded.tables[i].num_rows
