"""The pure per-batch pipeline: messages in, routed records and quality events out, no I/O.

:class:`Binding` binds one schema object of a contract to its topic; it is
built once (the decoder and the fused validation plan are compiled then) and
``process`` runs every batch:

1. decode (:mod:`streams.formats`): records, provenance, dead letters, drift;
2. validate with the engine, wrong-typed values merged in as ``dtype`` failures;
3. route, with the headers of :mod:`streams.pipeline.headers`:

   * **gate** mode: a message whose one record is valid goes to ``<topic>.validated``
     byte for byte (same key, value, headers and timestamp, plus ``{p}contract`` and
     ``{p}contract.sha256``); an invalid one to ``<topic>.quarantine`` (original bytes,
     the rules it breaks and a sentence); an undecodable one to ``<topic>.dlq``. Every
     input message lands in exactly one of the three;
   * **monitor** mode: the same, without the validated output (valid records stay where they are);
   * **multi-record messages** (NDJSON, Arrow) are routed *per record*: the valid and the
     invalid records of one message are re-encoded as one message each in the source format
     (NDJSON: the original line bytes; Arrow: an IPC stream of the rows) with ``{p}records``
     (count) and ``{p}records.index`` (positions in the source message); an undecodable line is
     dead-lettered alone. There, "exactly one output" holds per record, not per message.

   Outputs keep the source key and timestamp; ``partition`` is None (the producer partitions by key).
4. events (CloudEvents, to ``Settings.events_topic``): one ``batch.summary``, one
   ``rule.violation`` per rule that failed its threshold, one ``schema.drift`` when records
   carried unknown fields, lacked declared ones, or held values of the wrong type.

``process`` never raises on data. An unexpected exception is narrowed down to the
messages that cause it (by bisection), which go to the DLQ with class
``internal.<Exception>``; the rest of the batch is processed normally. Counts in
:class:`BatchResult` are records: ``valid`` counts valid records in both modes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import compress
from typing import cast

import pyarrow as pa

from streams.contracts.model import Contract, Op, SchemaObject
from streams.events import builders
from streams.events.codec import to_kafka
from streams.formats.decoder import Decoder
from streams.formats.reasons import Decoded, Format
from streams.pipeline.deadletter import dead_letter
from streams.pipeline.headers import HeaderNames, appended
from streams.pipeline.records import BatchResult, Headers, Message, OutRecord
from streams.pipeline.split import count_parts, offset_spans, one_partition, split_result
from streams.pipeline.stages import Stage
from streams.pipeline.verdicts import merge_mismatches
from streams.settings import Mode, Settings
from streams.validation.engine import compile_plan, plan_rules
from streams.validation.report import ValidationReport

__all__ = ["Binding"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Routed:
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


class Binding:
    """One contract schema object bound to its topic: build once, then ``process`` each batch."""

    def __init__(self, contract: Contract, schema_obj: SchemaObject, settings: Settings) -> None:
        self.contract = contract
        self.schema = schema_obj
        self.topic = schema_obj.topic
        self.settings = settings
        self.plan = compile_plan(contract, schema_obj.name, settings.on_rule_error)
        self.decoder = Decoder(schema_obj, max_message_bytes=settings.max_message_bytes)
        self.names = HeaderNames(settings.header_prefix)
        self.gate = settings.mode is Mode.GATE
        self._contract_headers = self.names.contract_headers(contract.ref, contract.sha256)
        self._batch_metrics = frozenset(r.name for r in schema_obj.rules if r.is_batch_metric)
        self._dtype_rule = {r.column: r.name for r in plan_rules(schema_obj) if r.op is Op.DTYPE and r.column}
        self._errored: frozenset[str] = frozenset()  # rules that could not run on the batch being routed
        #: amend the verdict before routing (stream time); see :mod:`streams.pipeline.stages`
        self.stages: list[Stage] = []

    def __repr__(self) -> str:
        return f"Binding({self.contract.ref}, {self.schema.name!r}, topic={self.topic!r}, mode={self.settings.mode})"

    # -- the batch --------------------------------------------------------------------------

    def process(self, messages: Sequence[Message], *, worker_id: str) -> BatchResult:
        """Route one batch and build its events. Pure: no I/O. Never raises on data."""
        if not messages:
            return BatchResult()
        return self._process(messages, worker_id, track=False)[0]

    def process_poll(self, batches: Sequence[Sequence[Message]], *, worker_id: str) -> list[BatchResult]:
        """Route one poll's batches of this topic, one per source partition, as **one batch**: one decode and one
        validation, then the outputs split back per partition (the first result carries the events, the rule
        failures and the report of the whole poll). With stages (stream time), or when the batches are not one
        per partition, each batch is processed on its own. Pure: no I/O. Never raises on data."""
        parts = [b[0].partition for b in batches if b]
        if len(batches) < 2 or self.stages or len(set(parts)) < len(batches) or not all(map(one_partition, batches)):
            return [self.process(b, worker_id=worker_id) for b in batches]
        whole, routed = self._process([m for b in batches for m in b], worker_id, track=True)
        return split_result(whole, batches, routed.validated_parts, routed.quarantined_parts, routed.dead_parts,
                            routed.part_counts)  # fmt: skip

    def _process(self, messages: Sequence[Message], worker_id: str, *, track: bool) -> tuple[BatchResult, _Routed]:
        spans = offset_spans(messages)
        try:
            routed = self._route(messages, track)
        except Exception:
            log.exception("batch of %d messages from %s failed; isolating the culprits", len(messages), self.topic)
            routed = self._isolate(messages, track)
        result = BatchResult(
            validated=routed.validated,
            quarantined=self._signed(routed.quarantined, worker_id),
            dead_lettered=self._signed(routed.dead, worker_id),
            counts=routed.counts,
            last_offsets={p: hi for p, (_, hi) in spans.items()},
            decode_seconds=routed.decode_seconds,
            validate_seconds=routed.validate_seconds,
            report=routed.report,
        )
        if routed.report is not None:
            result.rule_failures = {
                c.name: c.failures for c in routed.report.checks if c.failures and c.name not in self._batch_metrics
            }
        try:
            result.events = self._events(messages, spans, routed, worker_id)
        except Exception:  # events describe the batch; losing them must not lose records
            log.exception("could not build the quality events of a batch from %s", self.topic)
        result.events += routed.state
        return result, routed

    def _signed(self, records: list[OutRecord], worker_id: str) -> list[OutRecord]:
        """Bad records with the mode and worker that routed them (``{p}mode``, ``{p}worker``)."""
        if not records:
            return records
        ours = self.names.provenance(str(self.settings.mode), worker_id)
        return [replace(r, headers=r.headers + ours) for r in records]

    def _route(self, messages: Sequence[Message], track: bool = False) -> _Routed:
        out = _Routed(track=track)
        start = time.perf_counter()
        decoded = self.decoder.decode(messages)
        out.decoded = decoded
        out.decode_seconds = time.perf_counter() - start
        for d in decoded.dead:
            lines = decoded.lines.get(d.message)
            self._dead_letter(
                out, messages[d.message], cls=f"decode.{d.reason}", text=d.detail, lines=lines, line=d.line
            )
        if decoded.frame.height == 0:
            self._stages(out, messages, decoded, None)
            return out
        start = time.perf_counter()
        report = merge_mismatches(self.plan.validate(decoded.frame), self.schema, decoded.mismatches)
        report = self._stages(out, messages, decoded, report) or report
        out.report = report
        out.validate_seconds = time.perf_counter() - start
        valid = report.valid_mask.to_list()
        msg_of = decoded.message.to_list()
        invalid_rows = report.valid_mask.not_().fill_null(True).arg_true().to_list()
        # the reasons of an invalid record: only the rules that made it invalid (not warnings, thresholded
        # rules or batch metrics); a rule that could not run on the batch fails its rows (fail closed)
        rules_of = dict(zip(invalid_rows, report.gating().gather(invalid_rows).to_list(), strict=True))
        self._errored = frozenset(report.rule_errors)
        groups: dict[int, tuple[list[int], list[int], list[str]]] = {}  # message -> (valid, invalid, rules)
        formats = decoded.formats
        n_valid = sum(valid)
        out.counts["valid"] += n_valid
        out.counts["quarantined"] += len(valid) - n_valid
        if track:
            count_parts(out.part_counts, messages, msg_of, valid)
        if formats.count(Format.JSON) + formats.count(None) == len(formats):
            # the common case, one record per message: no per-record bookkeeping beyond the outputs
            if self.gate:
                vt, ours, rec = self.settings.output_topic(self.topic, "validated"), self._contract_headers, OutRecord
                rows = messages if msg_of == list(range(len(messages))) else [messages[i] for i in msg_of]
                out.validated += [
                    rec(vt, m.value, m.key, m.headers + ours, m.timestamp_ms) for m in compress(rows, valid)
                ]
                if track:
                    out.validated_parts += [m.partition for m in compress(rows, valid)]
            for r in invalid_rows:
                m = messages[msg_of[r]]
                self._quarantine(out, m, m.value, (), rules=rules_of[r], n=1, fmt=Format.JSON)
            return out
        line_of = decoded.line.to_list()
        for r, ok in enumerate(valid):
            i = msg_of[r]
            if formats[i] is Format.JSON:
                m = messages[i]
                if ok:
                    if self.gate:
                        self._validated(out, m, m.value, ())
                else:
                    self._quarantine(out, m, m.value, (), rules=rules_of[r], n=1, fmt=Format.JSON)
                continue
            group = groups.setdefault(i, ([], [], []))
            if ok:
                group[0].append(line_of[r])
            else:
                group[1].append(line_of[r])
                group[2].extend(x for x in rules_of[r] if x not in group[2])
        for i, (good, bad, rules) in groups.items():
            m, fmt = messages[i], formats[i]
            assert fmt is not None
            if good and self.gate:
                self._validated(out, m, _encode(decoded, i, good), self.names.record_headers(good))
            if bad:
                extra = self.names.record_headers(bad)
                self._quarantine(out, m, _encode(decoded, i, bad), extra, rules=rules, n=len(bad), fmt=fmt)
        return out

    def _stages(
        self, out: _Routed, messages: Sequence[Message], decoded: Decoded, report: ValidationReport | None
    ) -> ValidationReport | None:
        """Let each stage amend the verdict and add its records (an exception is the batch's: it is retried)."""
        if not self.stages:
            return report
        rows = decoded.message.to_list()
        dead = sorted({d.message for d in decoded.dead})
        for stage in self.stages:
            report, records = stage.amend(messages, decoded.frame, rows, report, dead, decoded.irregular)
            out.state += records
        return report

    # -- outputs ------------------------------------------------------------------------------

    def _validated(self, out: _Routed, m: Message, value: bytes | None, extra: Headers) -> None:
        headers = appended(m.headers, self._contract_headers, extra)
        topic = self.settings.output_topic(m.topic, "validated")
        out.validated.append(OutRecord(topic, value, m.key, headers, m.timestamp_ms))
        if out.track:
            out.validated_parts.append(m.partition)

    def _quarantine(
        self, out: _Routed, m: Message, value: bytes | None, extra: Headers, *, rules: list[str], n: int, fmt: Format
    ) -> None:
        shown = ", ".join(rules) if rules else "none"
        what = "The record" if fmt is Format.JSON else f"{n} record{'s' if n > 1 else ''} of this {fmt.upper()} message"
        broken = [r for r in rules if r in self._errored]
        if broken and len(broken) == len(rules):  # failed closed only: no rule judged the record
            cls = "contract.rule_error"
            text = (
                f"{what} could not be judged against contract {self.contract.ref} (schema {self.schema.name}): "
                f"rules that could not be evaluated on its batch: {', '.join(broken)} (their error is in the "
                "batch's quality events); quarantined because STREAMS_ON_RULE_ERROR is quarantine."
            )
        else:
            cls = "contract.violation"
            text = (
                f"{what} {'breaks' if n == 1 else 'break'} contract {self.contract.ref} (schema {self.schema.name}); "
                f"rules violated: {shown}."
            )
        headers = self.names.error_headers(
            topic=m.topic, partition=m.partition, offset=m.offset, contract_ref=self.contract.ref,
            stage="validate", error_class=cls, message=text, rules=rules,
        )  # fmt: skip
        topic = self.settings.output_topic(m.topic, "quarantine")
        out.quarantined.append(OutRecord(topic, value, m.key, appended(m.headers, headers, extra), m.timestamp_ms))
        if out.track:
            out.quarantined_parts.append(m.partition)

    def _dead_letter(
        self,
        out: _Routed,
        m: Message,
        *,
        cls: str,
        text: str,
        lines: list[bytes] | None = None,
        line: int | None = None,
    ) -> None:
        value, extra = None, cast(Headers, ())
        if line is not None and lines is not None:  # one undecodable line of an NDJSON message
            value, extra = lines[line] + b"\n", self.names.record_headers([line])
        out.dead.append(
            dead_letter(m, settings=self.settings, names=self.names, contract_ref=self.contract.ref, error_class=cls,
                        text=text, value=value, extra=extra)
        )  # fmt: skip
        out.counts["dead_lettered"] += 1
        if out.track:
            out.dead_parts.append(m.partition)
            out.part_counts.setdefault(m.partition, {"valid": 0, "quarantined": 0, "dead_lettered": 0})[
                "dead_lettered"
            ] += 1

    # -- unexpected exceptions ----------------------------------------------------------------

    def _isolate(self, messages: Sequence[Message], track: bool = False) -> _Routed:
        """Find the messages whose processing raises (bisecting), dead-letter them, route the rest together."""
        culprits: dict[int, BaseException] = {}

        def probe(lo: int, hi: int) -> None:
            try:
                self._route(messages[lo:hi])
            except Exception as exc:
                if hi - lo == 1:
                    culprits[lo] = exc
                else:
                    mid = (lo + hi) // 2
                    probe(lo, mid)
                    probe(mid, hi)

        probe(0, len(messages))
        good = [m for k, m in enumerate(messages) if k not in culprits]
        out = _Routed(track=track)
        if good:
            try:
                out = self._route(good, track)
            except Exception as exc:  # only the whole batch fails: give it all up, unchanged
                log.exception("batch from %s still fails without its culprits", self.topic)
                culprits = {k: culprits.get(k, exc) for k in range(len(messages))}
                out = _Routed(track=track)
        for k in sorted(culprits):
            name = type(culprits[k]).__name__
            text = f"Processing this message raised {name} inside quality-streams; it is kept here unchanged."
            self._dead_letter(out, messages[k], cls=f"internal.{name}", text=text)
        return out

    # -- events --------------------------------------------------------------------------------

    def _events(
        self, messages: Sequence[Message], offsets: dict[int, tuple[int, int]], routed: _Routed, worker_id: str
    ) -> list[OutRecord]:
        every = [m.timestamp_ms for m in messages]
        stamps: list[int] = [t for t in every if t is not None] if None in every else every  # type: ignore[assignment]
        now = datetime.now(UTC)
        start = datetime.fromtimestamp(min(stamps) / 1000, UTC) if stamps else now
        end = datetime.fromtimestamp(max(stamps) / 1000, UTC) if stamps else now
        latency = (now - start).total_seconds() if stamps else routed.decode_seconds + routed.validate_seconds
        source = messages[0].topic
        report, decoded = routed.report, routed.decoded
        summary = [
            builders.batch_summary(
                self.contract, self.schema, report, source_topic=source, offsets=offsets, window_start=start,
                window_end=end, latency_seconds=latency, counts=routed.counts, mode=str(self.settings.mode),
                worker_id=worker_id,
            ),
        ] if self.settings.batch_events else []  # fmt: skip
        per_batch = self.settings.batch_events or not any(s.judges_windows for s in self.stages)
        events = [
            *summary,
            *(builders.rule_violations(
                self.contract, self.schema, report, source_topic=source, offsets=offsets, window_start=start,
                window_end=end, sample_size=self.settings.failure_case_sample, worker_id=worker_id,
            ) if per_batch else []),
        ]  # fmt: skip
        if decoded is not None and (self.settings.batch_events or not self.stages):  # else: one per window
            mismatched = dict(decoded.type_mismatches)
            if report is not None:  # the engine's conformance failures too (int32 overflow, bad timestamp)
                failures = {c.name: c.failures for c in report.checks}
                mismatched |= {col: failures[name] for col, name in self._dtype_rule.items() if failures.get(name)}
            if decoded.unknown_fields or decoded.missing_fields or mismatched:
                events.append(
                    builders.schema_drift(
                        self.contract, self.schema, source_topic=source, offsets=offsets, window_start=start,
                        window_end=end, unknown_fields=decoded.unknown_fields,
                        missing_fields=decoded.missing_fields, type_mismatches=mismatched, worker_id=worker_id,
                    )
                )  # fmt: skip
        topic = self.settings.events_topic
        return [OutRecord(topic, value, key, tuple(headers)) for key, value, headers in map(to_kafka, events)]


def _encode(decoded: Decoded, i: int, positions: list[int]) -> bytes:
    """Records ``positions`` of multi-record message ``i``, re-encoded in its format."""
    if decoded.formats[i] is Format.NDJSON:
        lines = decoded.lines[i]
        return b"\n".join(lines[p] for p in positions) + b"\n"
    table = decoded.tables[i].take(pa.array(positions, type=pa.int64()))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())
