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
     (NDJSON: the original line bytes; Arrow: an IPC stream, or file, of the rows; the message's own bytes when
     they are all valid, or all invalid, and no line was undecodable) with ``{p}records``
     (count) and ``{p}records.index`` (positions in the source message); an undecodable line is
     dead-lettered with the other undecodable lines of its message and reason (one output). There, "exactly one
     output" holds per record, not per message.

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
from itertools import chain, compress
from operator import attrgetter
from typing import cast

import polars as pl

from streams.contracts.model import Contract, Op, SchemaObject, Severity
from streams.formats.columns import WIRE
from streams.formats.decoder import Decoder
from streams.formats.reasons import Decoded, Format
from streams.pipeline.batch_events import batch_events
from streams.pipeline.deadletter import dead_letter, grouped
from streams.pipeline.headers import HeaderNames, appended, bounded
from streams.pipeline.records import BatchResult, Headers, Message, OutRecord, forwarded, with_headers
from streams.pipeline.routed import Given, Routed, encode_positions
from streams.pipeline.split import count_parts, offset_spans, one_partition, poll_stages, slice_poll, split_result
from streams.pipeline.stages import PollStage, Stage
from streams.pipeline.verdicts import merge_mismatches, row_failures
from streams.settings import Mode, Settings
from streams.validation.engine import compile_plan, plan_rules
from streams.validation.report import ValidationReport

__all__ = ["Binding"]

#: what processing data may raise: any error, and polars' panics (``PanicException`` is a ``BaseException``: it
#: raises one where it has not implemented something, e.g. JSON of binary values); never a reason to stop a worker
FAILED: tuple[type[BaseException], ...] = (Exception, pl.exceptions.PanicException)

log = logging.getLogger(__name__)
_PARTITION = attrgetter("partition")


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
        rules = plan_rules(schema_obj)
        self.dtype_rule = {r.column: r.name for r in rules if r.op is Op.DTYPE and r.column}
        #: rules counted per record (``BatchResult.rule_failures``); an error-severity SQL rule fails every row of a
        #: batch it cannot run on, and whether it runs can depend on the batch's rows (a query returning NULL)
        self._row_rules = frozenset(r.name for r in rules if not r.is_batch_metric)
        self._fail_closed_sql = any(r.op is Op.SQL and r.severity is Severity.ERROR for r in rules)
        #: the decoded frame's schema whatever the batch (a column the decoder had to build as text differs)
        self._wire = pl.Schema({f.name: WIRE.get(k, f.dtype) for f, k in zip(self.decoder.fields, self.decoder.kinds,
                                                                              strict=True)})  # fmt: skip
        self._errored: frozenset[str] = frozenset()  # rules that could not run on the batch being routed
        #: a quarantined record's headers but its source's, per verdict (rules, records, format, rules not run)
        self._verdicts: dict[tuple[tuple[str, ...], int, Format, tuple[str, ...]], Headers] = {}
        self._sources: dict[str, tuple[bytes, str]] = {}  # source topic -> its header value, its quarantine topic
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
        """Route one poll's batches of this topic, one per source partition, with **one decode and one validation**.

        Without stream time the poll is routed as one batch (its in-batch rules judge the poll) and the outputs are
        split back per partition; the first result carries the events, rule failures and report of the whole poll
        (``BatchResult.poll_events``). With stream time (a stage judging windows) the stages amend the poll's verdict
        in one call, each batch getting its own state records, and the poll's decode, validation and amended verdict
        are cut back per partition for each batch's routing (:meth:`_process_slices`): every result is what
        ``process`` gives that batch. When the batches are not one
        per partition, each is processed on its own. Pure: no I/O. Never raises on data."""
        parts = [b[0].partition for b in batches if b]
        if len(batches) < 2 or len(set(parts)) < len(batches) or not all(map(one_partition, batches)):
            return [self.process(b, worker_id=worker_id) for b in batches]
        if self.windowed:
            return self._process_slices(batches, worker_id)
        whole, routed = self._process(list(chain.from_iterable(batches)), worker_id, track=True)
        return split_result(whole, batches, routed.validated_parts, routed.quarantined_parts, routed.dead_parts,
                            routed.part_counts)  # fmt: skip

    @property
    def windowed(self) -> bool:
        """A stage judges event-time windows (stream time): partials, clocks and uniqueness are per partition."""
        return any(s.judges_windows for s in self.stages)

    def _process_slices(self, batches: Sequence[Sequence[Message]], worker_id: str) -> list[BatchResult]:
        """One decode, one validation and one call of each stage for the poll (``amend_poll``, which gives every
        partition batch the state records it gets alone; a stage without it runs on each batch's slice), then each
        partition batch's slice of them through routing, alone: a row's verdict depends on that row alone, except for
        in-batch uniqueness and ``duplicateValues``, which stream time replaces or ignores. The batches are processed
        one by one where the poll's verdicts cannot stand for theirs (per-batch events on; an error-severity SQL rule
        failing closed; a row rule that could not run on the poll; a column decoded as text; the poll's decode or
        validation raised): ``docs/semantics.md``, "What a batch is". A batch metric fails no row here; its check is
        the poll's."""
        alone = self.settings.batch_events or (self._fail_closed_sql and self.settings.on_rule_error == "quarantine")
        slices, states = None, None
        if not alone:
            messages = list(chain.from_iterable(batches))
            try:
                start = time.perf_counter()
                decoded = self.decoder.decode(messages)
                decoded_at = time.perf_counter()
                report = None
                if decoded.frame.height:
                    report = merge_mismatches(self.plan.validate(decoded.frame), self.schema, decoded.mismatches)
                judged = report is None or not self._row_rules.intersection(report.rule_errors)
                if decoded.frame.schema == self._wire and judged:
                    if all(callable(getattr(s, "amend_poll", None)) for s in self.stages):
                        report, states = poll_stages(cast(list[PollStage], self.stages), decoded, report, batches)
                    slices = slice_poll(decoded, report, [len(b) for b in batches])
                share = ((decoded_at - start) / len(messages), (time.perf_counter() - decoded_at) / len(messages))
            except FAILED:
                log.exception("a poll of %d partitions of %s failed; processing them one by one", len(batches),
                              self.topic)  # fmt: skip
                slices = None
        if slices is None:
            return [self.process(b, worker_id=worker_id) for b in batches]
        return [
            self._process(b, worker_id, track=False,
                          given=(d, r, share[0] * len(b), share[1] * len(b), None if states is None else states[k]))[0]
            for k, (b, (d, r)) in enumerate(zip(batches, slices, strict=True))
        ]  # fmt: skip

    def _process(
        self, messages: Sequence[Message], worker_id: str, *, track: bool, given: Given | None = None
    ) -> tuple[BatchResult, Routed]:
        spans = offset_spans(messages)
        try:
            routed = self._route(messages, track, given)
        except FAILED:
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
        if routed.report is not None and self.windowed:  # the records each rule failed as routed (stream time)
            result.rule_failures = row_failures(routed.report.row_lists()[0], self._row_rules)
        elif routed.report is not None:
            result.rule_failures = {
                c.name: c.failures for c in routed.report.checks if c.failures and c.name not in self._batch_metrics
            }
        try:
            result.events = batch_events(self, messages, spans, routed.report, routed.decoded, routed.counts,
                                         routed.decode_seconds + routed.validate_seconds, worker_id)  # fmt: skip
        except FAILED:  # events describe the batch; losing them must not lose records
            log.exception("could not build the quality events of a batch from %s", self.topic)
        result.events += routed.state
        return result, routed

    def _signed(self, records: list[OutRecord], worker_id: str) -> list[OutRecord]:
        """Bad records with the mode and worker that routed them (``{p}mode``, ``{p}worker``)."""
        if not records:
            return records
        return with_headers(records, self.names.provenance(str(self.settings.mode), worker_id))

    def _route(self, messages: Sequence[Message], track: bool = False, given: Given | None = None) -> Routed:
        """Decode, validate, amend (stages) and route a batch; ``given``: its decode and validation, and their times."""
        out = Routed(track=track)
        report: ValidationReport | None = None
        if given is None:
            start = time.perf_counter()
            decoded = self.decoder.decode(messages)
            out.decode_seconds = time.perf_counter() - start
        else:
            decoded, report, out.decode_seconds, out.validate_seconds, state = given
            if state is not None:  # the stages amended the poll's verdict at once: this is their verdict's slice
                out.state += state
        out.decoded = decoded
        staged = given is None or given[4] is None
        for i, cls, text, at in grouped(decoded.dead):  # an NDJSON message's bad lines: one output per reason
            self._dead_letter(out, messages[i], cls=cls, text=text, lines=decoded.lines.get(i), at=at)
        if decoded.frame.height == 0:
            if staged:
                self._stages(out, messages, decoded, None)
            return out
        start = time.perf_counter()
        if given is None:
            report = merge_mismatches(self.plan.validate(decoded.frame), self.schema, decoded.mismatches)
        assert report is not None
        if staged:
            report = self._stages(out, messages, decoded, report) or report
        out.report = report
        out.validate_seconds += time.perf_counter() - start
        valid = report.valid_mask.to_list()
        msg_of = decoded.message.to_list()
        invalid_rows = report.valid_mask.not_().fill_null(True).arg_true().to_list()
        # the reasons of an invalid record: only the rules that made it invalid (not warnings, thresholded
        # rules or batch metrics); a rule that could not run on the batch fails its rows (fail closed)
        rules_of = dict(zip(invalid_rows, report.gating_of(invalid_rows).to_list(), strict=True))
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
                vt = self.settings.output_topic(self.topic, "validated")
                rows = messages if msg_of == list(range(len(messages))) else [messages[i] for i in msg_of]
                out.validated += forwarded(vt, compress(rows, valid), self._contract_headers)
                if track:
                    out.validated_parts += map(_PARTITION, compress(rows, valid))
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
                self._validated(out, m, encode_positions(decoded, i, good, m.value), self.names.record_headers(good))
            if bad:
                extra = self.names.record_headers(bad)
                value = encode_positions(decoded, i, bad, m.value)
                self._quarantine(out, m, value, extra, rules=rules, n=len(bad), fmt=fmt)
        return out

    def _stages(
        self, out: Routed, messages: Sequence[Message], decoded: Decoded, report: ValidationReport | None
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

    def _validated(self, out: Routed, m: Message, value: bytes | None, extra: Headers) -> None:
        headers = appended(m.headers, self._contract_headers, extra)
        topic = self.settings.output_topic(m.topic, "validated")
        out.validated.append(OutRecord(topic, value, m.key, headers, m.timestamp_ms))
        if out.track:
            out.validated_parts.append(m.partition)

    def _quarantine(
        self, out: Routed, m: Message, value: bytes | None, extra: Headers, *, rules: list[str], n: int, fmt: Format
    ) -> None:
        broken = tuple(r for r in rules if r in self._errored)
        key = (tuple(rules), n, fmt, broken)
        verdict = self._verdicts.get(key)
        if verdict is None:  # the same sentence and headers for every record of a batch breaking the same rules
            if len(self._verdicts) >= 4096:
                self._verdicts.clear()
            verdict = self._verdicts[key] = self._verdict(rules, n, fmt, broken)
        source = self._sources.get(m.topic)
        if source is None:
            source = self._sources[m.topic] = (bounded(m.topic), self.settings.output_topic(m.topic, "quarantine"))
        headers = self.names.error_source(source[0], m.partition, m.offset) + verdict
        out.quarantined.append(OutRecord(source[1], value, m.key, appended(m.headers, headers, extra), m.timestamp_ms))
        if out.track:
            out.quarantined_parts.append(m.partition)

    def _verdict(self, rules: list[str], n: int, fmt: Format, broken: tuple[str, ...]) -> Headers:
        """The dead-letter headers of a record that breaks ``rules`` (``broken``: those that could not run) after
        its source's (``HeaderNames.error_source``)."""
        shown = ", ".join(rules) if rules else "none"
        what = "The record" if fmt is Format.JSON else f"{n} record{'s' if n > 1 else ''} of this {fmt.upper()} message"
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
        return self.names.error_verdict(contract_ref=self.contract.ref, stage="validate", error_class=cls,
                                        message=text, rules=rules)  # fmt: skip

    def _dead_letter(
        self,
        out: Routed,
        m: Message,
        *,
        cls: str,
        text: str,
        lines: list[bytes] | None = None,
        at: list[int] | None = None,
    ) -> None:
        value, extra, n = None, cast(Headers, ()), 1
        if at is not None and lines is not None:  # undecodable lines of an NDJSON message
            value, extra, n = b"".join(lines[k] + b"\n" for k in at), self.names.record_headers(at), len(at)
        out.dead.append(
            dead_letter(m, settings=self.settings, names=self.names, contract_ref=self.contract.ref, error_class=cls,
                        text=text, value=value, extra=extra)
        )  # fmt: skip
        out.counts["dead_lettered"] += n  # records, as for the other outcomes
        if out.track:
            out.dead_parts.append(m.partition)
            out.part_counts.setdefault(m.partition, {"valid": 0, "quarantined": 0, "dead_lettered": 0})[
                "dead_lettered"
            ] += n

    # -- unexpected exceptions ----------------------------------------------------------------

    def _isolate(self, messages: Sequence[Message], track: bool = False) -> Routed:
        """Find the messages whose processing raises (bisecting), dead-letter them, route the rest together."""
        culprits: dict[int, BaseException] = {}

        def probe(lo: int, hi: int) -> None:
            try:
                self._route(messages[lo:hi])
            except FAILED as exc:
                if hi - lo == 1:
                    culprits[lo] = exc
                else:
                    mid = (lo + hi) // 2
                    probe(lo, mid)
                    probe(mid, hi)

        probe(0, len(messages))
        good = [m for k, m in enumerate(messages) if k not in culprits]
        out = Routed(track=track)
        if good:
            try:
                out = self._route(good, track)
            except FAILED as exc:  # only the whole batch fails: give it all up, unchanged
                log.exception("batch from %s still fails without its culprits", self.topic)
                culprits = {k: culprits.get(k, exc) for k in range(len(messages))}
                out = Routed(track=track)
        for k in sorted(culprits):
            name = type(culprits[k]).__name__
            text = f"Processing this message raised {name} inside quality-streams; it is kept here unchanged."
            self._dead_letter(out, messages[k], cls=f"internal.{name}", text=text)
        return out
