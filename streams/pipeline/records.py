"""Plain records that travel between the Kafka client and the pure pipeline.

The pipeline (:mod:`streams.pipeline.binding`) turns a batch of :class:`Message`
into :class:`OutRecord` lists without touching Kafka, so it is testable without a
broker; the runtime (:mod:`streams.kafka`) consumes and produces them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.formats.content_types import Headers

__all__ = ["BatchResult", "Headers", "Message", "OutRecord", "forwarded", "with_headers"]


# Message and OutRecord are built once per record on the hot path and treated as immutable values, but not
# ``frozen``: a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, ~2 µs per record
# (measured: benchmarks/bench_hotpath.py). ``unsafe_hash`` keeps them hashable by value, as they were.


@dataclass(slots=True, unsafe_hash=True)
class Message:
    """One consumed Kafka record, exactly as it arrived (never modified after it is built)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    headers: Headers = ()
    timestamp_ms: int | None = None


@dataclass(slots=True, unsafe_hash=True)
class OutRecord:
    """One record to produce (never modified after it is built; ``dataclasses.replace`` makes a changed copy).

    ``partition`` None lets the producer's partitioner choose.
    """

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Headers = ()
    timestamp_ms: int | None = None
    partition: int | None = None


@dataclass(slots=True)
class BatchResult:
    """Everything one batch produces, plus what it measured. Built by the pure pipeline."""

    validated: list[OutRecord] = field(default_factory=list)
    quarantined: list[OutRecord] = field(default_factory=list)
    dead_lettered: list[OutRecord] = field(default_factory=list)
    events: list[OutRecord] = field(default_factory=list)
    #: records (not messages) per outcome: valid, quarantined, dead_lettered
    counts: dict[str, int] = field(default_factory=dict)
    #: failing rows per rule name in this batch
    rule_failures: dict[str, int] = field(default_factory=dict)
    #: highest offset seen per partition (commit offset + 1 after delivery)
    last_offsets: dict[int, int] = field(default_factory=dict)
    decode_seconds: float = 0.0
    validate_seconds: float = 0.0
    report: object | None = None  # ValidationReport of the decoded records, when any
    #: the events describe this batch's whole poll (``Binding.process_poll`` routed it as one batch): the poll's
    #: other partition batches carry none and wait for these
    poll_events: bool = False

    def outputs(self) -> list[OutRecord]:
        return [*self.validated, *self.quarantined, *self.dead_lettered, *self.events]


def forwarded(topic: str, messages: Iterable[Message], ours: Headers) -> list[OutRecord]:
    """``messages`` as they are, to ``topic``, with the headers ``ours`` after their own (a gate's valid records):
    ``OutRecord(topic, m.value, m.key, m.headers + ours, m.timestamp_ms)`` each, every field set here without the
    generated ``__init__``'s call (a third of the cost of building one, per valid record)."""
    new, cls = object.__new__, OutRecord
    out: list[OutRecord] = []
    append = out.append
    for m in messages:
        r = new(cls)
        r.topic = topic
        r.value = m.value
        r.key = m.key
        r.headers = m.headers + ours
        r.timestamp_ms = m.timestamp_ms
        r.partition = None
        append(r)
    return out


def with_headers(records: Iterable[OutRecord], ours: Headers) -> list[OutRecord]:
    """``records`` with the headers ``ours`` after theirs, every other field kept (``dataclasses.replace``, which
    costs ~6 µs a record, an order of magnitude more: it is called per quarantined and dead-lettered record)."""
    cls = OutRecord
    return [cls(r.topic, r.value, r.key, r.headers + ours, r.timestamp_ms, r.partition) for r in records]
