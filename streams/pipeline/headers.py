"""The Kafka headers quality-streams adds to the records it produces.

Names live under ``Settings.header_prefix`` (``p`` below, default ``qstreams.``)
and follow Kafka Connect's dead-letter conventions (``__connect.errors.*``):

=============================  ===============================================================
``{p}errors.topic``            source topic of the record
``{p}errors.partition``        source partition (decimal)
``{p}errors.offset``           source offset (decimal)
``{p}errors.contract``         ``id@version`` of the contract enforced
``{p}errors.rules``            comma-separated names of the rules that made the record(s) invalid
                               (warnings, thresholded rules and batch metrics are not listed); past
                               1024 bytes whole names only, then ``…(+N more)``
``{p}errors.class``            ``decode.<DecodeReason>``, ``contract.violation``, ``contract.rule_error``
                               (only rules that could not be evaluated failed it: fail closed) or
                               ``internal.<Exception>``
``{p}errors.message``          one full sentence for a human, never a data value
``{p}errors.stage``            ``decode`` | ``validate`` | ``internal``
``{p}contract``                ``id@version`` (validated records)
``{p}contract.sha256``         SHA-256 of the contract document (validated records)
``{p}records``                 number of records carried by a re-encoded NDJSON/Arrow message
``{p}records.index``           comma-separated positions of those records in the source message,
                               runs as ``first-last`` (``0-4,7,9-12``); never cut: with the source
                               position it identifies each record
``{p}mode``                    ``gate`` | ``monitor``: the mode of the worker that quarantined or dead-lettered it
``{p}worker``                  the id of that worker (``Settings.worker_id``, default host-pid)
=============================  ===============================================================

The source record's own headers are kept first, in order; ours are appended.
Values are UTF-8 bytes of bounded length (:data:`MAX_VALUE_BYTES`, cut at a
character boundary and marked with ``…``), except ``{p}records.index`` (numbers
only, the records' identity). Headers never carry record values,
so classified (restricted, PII) columns cannot leak through them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from streams.formats.content_types import ARROW_STREAM, CONTENT_TYPE, NDJSON, Headers, content_type, header

__all__ = [
    "ARROW_STREAM",
    "CONTENT_TYPE",
    "MAX_VALUE_BYTES",
    "NDJSON",
    "HeaderNames",
    "appended",
    "bounded",
    "bounded_list",
    "content_type",
    "header",
    "parse_positions",
    "positions",
]

#: Longest header value we write, in bytes.
MAX_VALUE_BYTES = 1024
_ELLIPSIS = "…".encode()


def bounded(text: str, limit: int = MAX_VALUE_BYTES) -> bytes:
    """``text`` as UTF-8, at most ``limit`` bytes: cut at a character boundary and ended with ``…``."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return data
    cut = data[: max(limit - len(_ELLIPSIS), 0)]
    return cut.decode("utf-8", "ignore").encode("utf-8") + _ELLIPSIS


def bounded_list(names: list[str], limit: int = MAX_VALUE_BYTES) -> bytes:
    """``names`` comma-separated, at most ``limit`` bytes: past it, the whole names that fit, then ``…(+N more)``
    (a reader splitting on commas never gets a name cut in two)."""
    data = ",".join(names).encode("utf-8", "replace")
    if len(data) <= limit:
        return data
    kept: list[bytes] = []
    size = 0
    for name in names:
        item = name.encode("utf-8", "replace")
        tail = len(f"…(+{len(names) - len(kept) - 1} more)".encode())
        if size + len(item) + 1 + tail > limit:
            break
        kept.append(item)
        size += len(item) + 1
    return b",".join([*kept, f"…(+{len(names) - len(kept)} more)".encode()])


@dataclass(frozen=True, slots=True)
class HeaderNames:
    """Every header name for one prefix; build once per worker with ``HeaderNames(settings.header_prefix)``."""

    prefix: str = "qstreams."
    errors_topic: str = field(init=False, repr=False, compare=False)
    errors_partition: str = field(init=False, repr=False, compare=False)
    errors_offset: str = field(init=False, repr=False, compare=False)
    errors_contract: str = field(init=False, repr=False, compare=False)
    errors_rules: str = field(init=False, repr=False, compare=False)
    errors_class: str = field(init=False, repr=False, compare=False)
    errors_message: str = field(init=False, repr=False, compare=False)
    errors_stage: str = field(init=False, repr=False, compare=False)
    contract: str = field(init=False, repr=False, compare=False)
    contract_sha256: str = field(init=False, repr=False, compare=False)
    records: str = field(init=False, repr=False, compare=False)
    records_index: str = field(init=False, repr=False, compare=False)
    mode: str = field(init=False, repr=False, compare=False)
    worker: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # the names are read per output record: built once, not per access
        for f in fields(self):  # errors_topic is {p}errors.topic
            if not f.init:
                object.__setattr__(self, f.name, self.prefix + f.name.replace("_", "."))

    # -- builders ------------------------------------------------------------------

    def provenance(self, mode: str, worker_id: str) -> Headers:
        """``{p}mode`` and ``{p}worker`` of a quarantined or dead-lettered record: who routed it, how."""
        return ((self.mode, bounded(mode)), (self.worker, bounded(worker_id)))

    def contract_headers(self, ref: str, sha256: str) -> Headers:
        """``{p}contract`` and ``{p}contract.sha256`` of a validated record."""
        return ((self.contract, bounded(ref)), (self.contract_sha256, sha256.encode("ascii")))

    def error_headers(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        contract_ref: str,
        stage: str,
        error_class: str,
        message: str,
        rules: Iterable[str] = (),
    ) -> Headers:
        """The dead-letter headers of a quarantined or dead-lettered record."""
        head = self.error_source(bounded(topic), partition, offset)
        return head + self.error_verdict(contract_ref=contract_ref, stage=stage, error_class=error_class,
                                         message=message, rules=rules)  # fmt: skip

    def error_source(self, topic: bytes, partition: int, offset: int) -> Headers:
        """The first dead-letter headers, where the record came from (``topic``: :func:`bounded` already)."""
        return (
            (self.errors_topic, topic),
            (self.errors_partition, str(partition).encode("ascii")),
            (self.errors_offset, str(offset).encode("ascii")),
        )

    def error_verdict(
        self, *, contract_ref: str, stage: str, error_class: str, message: str, rules: Iterable[str] = ()
    ) -> Headers:
        """The dead-letter headers after :meth:`error_source`: the contract, rules, class, sentence and stage (the
        same for every record of a batch with the same verdict: a router may keep them)."""
        out: list[tuple[str, bytes]] = [(self.errors_contract, bounded(contract_ref))]
        names = bounded_list(list(rules))
        if names:
            out.append((self.errors_rules, names))
        out += [
            (self.errors_class, bounded(error_class)),
            (self.errors_message, bounded(message)),
            (self.errors_stage, bounded(stage)),
        ]
        return tuple(out)

    def record_headers(self, indexes: Iterable[int]) -> Headers:
        """``{p}records`` (count) and ``{p}records.index`` of a re-encoded multi-record message."""
        idx = list(indexes)
        return (
            (self.records, str(len(idx)).encode("ascii")),
            (self.records_index, positions(idx)),  # whole: the records' identity
        )


def positions(idx: list[int]) -> bytes:
    """Ascending record positions, comma-separated, a run of consecutive ones as ``first-last`` (``0-4,7,9-12``):
    the records of a large message in a few bytes (500,000 lines: ``0-499999``)."""
    parts: list[str] = []
    k = 0
    while k < len(idx):
        end = k
        while end + 1 < len(idx) and idx[end + 1] == idx[end] + 1:
            end += 1
        parts.append(str(idx[k]) if end == k else f"{idx[k]}-{idx[end]}")
        k = end + 1
    return ",".join(parts).encode("ascii")


def parse_positions(value: bytes) -> list[int]:
    """The positions of a ``{p}records.index`` value (:func:`positions`); ValueError when it is not one."""
    out: list[int] = []
    for part in value.split(b","):
        first, _, last = part.partition(b"-")
        out.extend(range(int(first), int(last or first) + 1))
    return out


def appended(original: Headers, *ours: Headers) -> Headers:
    """The source headers first, unchanged and in order, then ours."""
    out = tuple(original)
    for extra in ours:
        out += tuple(extra)
    return out
