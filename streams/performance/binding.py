"""What a performance joiner joins: a prediction contract's labels binding, and its records decoded.

A prediction contract binds its labels topic in the schema object's ``qstreams.prediction``::

    customProperties:
      - property: qstreams.prediction
        value:
          score: score
          label: predicted_label
          modelVersion: model_version
          positiveLabel: fraud
          predictionId: prediction_id          # the join key on the predictions topic
          labels:
            topic: card_transactions.labels    # JSON objects, one per message
            predictionId: prediction_id        # the join key on the labels topic
            label: actual_label                # a boolean, or a value compared with positiveLabel
            labelTime: labelled_at             # optional: ISO-8601 text or epoch ms (default: Kafka timestamp)
            horizon: 1h                        # a label joins a prediction at most this far apart in time

The window length and allowed lateness are the schema object's stream-time settings
(``qstreams.window``, ``qstreams.allowedLateness``, else ``STREAMS_*`` defaults), and the prediction
time is its ``qstreams.eventTime`` field (else the Kafka timestamp): the windows of prediction time
are the stream-time windows of the predictions, and a prediction's time is the worker's reading of it
(:func:`~streams.windows.record_time.record_time_ms`: ISO-8601 text in the property's zone; a number is
no time); a label time is read as a ``timestamp`` property without a zone (naive text is UTC), or as epoch
milliseconds (a number: labels records are typed by no contract, and producers of labels write either). A
predictions message is read as the worker reads it (:func:`records`: one JSON object, NDJSON lines or Arrow rows, by
the ``content-type`` header or the value); a labels message is read the same three ways (:func:`_label_messages`).
Decoding never raises on data: a record that cannot be read is a :class:`Skip` with its reason; a record whose time
is missing (its time field absent or unreadable, or, reading the Kafka timestamp, none: Kafka's -1) is
``bad_time``.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl
import pyarrow as pa

from streams.errors import ContractError
from streams.events.types import MAX_MS, MIN_MS
from streams.formats.arrow import ARROW_MAGIC, ndjson_lines, read_ipc
from streams.formats.columns import value_at
from streams.formats.content_types import ARROW_STREAM, NDJSON, content_type
from streams.formats.reasons import DecodeReason, Format
from streams.pipeline.records import Message
from streams.profiles.performance import CALIBRATION_BINS
from streams.profiles.prediction import NO_VERSION, label_positive
from streams.profiles.properties import PREDICTION, prediction_spec
from streams.profiles.spec import LabelsSpec, PredictionSpec
from streams.windows.record_time import LABEL_TIME, record_time_ms

if TYPE_CHECKING:
    from streams.contracts.model import Contract
    from streams.formats.decoder import MessageDecoder
    from streams.settings import Settings

__all__ = [
    "JoinSpec", "Label", "Prediction", "Skip", "SkipReason", "join_spec", "labels_line", "labels_problem",
    "records",
]  # fmt: skip


class SkipReason(enum.StrEnum):
    """Why a record of the predictions or labels topic took no part in the join."""

    UNDECODABLE = "undecodable"  # not a JSON object
    NO_ID = "no_prediction_id"
    BAD_TIME = "bad_time"  # the time field is missing or unreadable
    BAD_SCORE = "bad_score"  # missing, not a number, NaN, infinite or outside [0, 1]
    BAD_LABEL = "bad_label"  # missing, an object or array: no label (profiles.prediction.label_positive)


@dataclass(frozen=True, slots=True)
class Skip:
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class Prediction:
    pid: str
    time_ms: int
    version: str
    score: float
    positive: bool  # predicted class


@dataclass(frozen=True, slots=True)
class Label:
    pid: str
    time_ms: int
    actual: bool


@dataclass(frozen=True, slots=True)
class JoinSpec:
    """Everything the joiner needs to know, resolved from the contract and the settings."""

    contract: Contract
    schema: str
    predictions_topic: str
    prediction: PredictionSpec
    labels: LabelsSpec
    event_time: str | None  # prediction time field (None: Kafka timestamp)
    event_time_dtype: pl.DataType  # its property's type: the worker reads the field as it (record_time_ms)
    window_ms: int
    lateness_ms: int
    idle_ms: int
    max_skew_ms: int
    max_message_bytes: int = 1_048_576  # a larger predictions message is dead-lettered by the worker: undecodable

    @property
    def event_time_path(self) -> tuple[str, ...]:
        """Where the prediction time is in a record (a nested property's dotted path); () for the Kafka timestamp."""
        return tuple(self.event_time.split(".")) if self.event_time else ()

    @property
    def horizon_ms(self) -> int:
        return self.labels.horizon_ms


def labels_problem(spec: PredictionSpec, schema: str, columns: Sequence[str]) -> str | None:
    """What the join refuses in a labels binding of ``spec`` (``qstreams.prediction`` of schema object ``schema``
    with properties ``columns``) beyond what :func:`prediction_spec` checks; None when nothing. ``qstreams contracts
    lint`` says it too (at :func:`labels_line`), before a worker refuses to start on it."""
    if spec.labels is None:
        return None
    if spec.prediction_id not in columns:
        return (f"qstreams.prediction.predictionId names {spec.prediction_id!r}, which is not a property of schema "
                f"object {schema!r}")  # fmt: skip
    if spec.score_bins % CALIBRATION_BINS:
        return (f"qstreams.prediction.scoreBins ({spec.score_bins}) must be a multiple of {CALIBRATION_BINS} with a "
                f"labels binding: the expected calibration error of model.performance is on {CALIBRATION_BINS} "
                "equal-width bins of whole score bins")  # fmt: skip
    return None


def labels_line(contract: Contract, schema: str, default: int | None) -> int | None:
    """The line of the schema object's ``qstreams.prediction`` (its ``labels`` when present), else ``default``."""
    doc = contract.document
    if doc is None:
        return default
    for i, node in enumerate(doc.data.get("schema") or []):
        if not isinstance(node, Mapping) or schema not in (node.get("name"), node.get("physicalName")):
            continue
        for j, item in enumerate(node.get("customProperties") or []):
            if isinstance(item, Mapping) and item.get("property") == PREDICTION:
                value = item.get("value")
                where: tuple[str | int, ...] = ("schema", i, "customProperties", j, "value")
                if isinstance(value, Mapping) and "labels" in value:
                    where = (*where, "labels")
                return doc.line(where) or default
    return default


def join_spec(contract: Contract, settings: Settings, schema: str | None = None) -> JoinSpec:
    """The :class:`JoinSpec` of the schema object binding a labels topic; :class:`ContractError` (path:line) if none."""
    candidates = [s for s in contract.schemas if schema is None or s.name == schema]
    if not candidates:
        names = ", ".join(s.name for s in contract.schemas)
        raise ContractError(f"no schema object {schema!r} in the contract (schema objects: {names})",
                            path=contract.path)  # fmt: skip
    found = []
    for obj in candidates:
        try:
            spec = prediction_spec(contract, obj.name)
        except ContractError as exc:
            raise ContractError(f"schema object {obj.name!r}: {exc.message}", path=contract.path,
                                line=labels_line(contract, obj.name, obj.line)) from None  # fmt: skip
        if spec is not None and spec.labels is not None:
            found.append((obj, spec))
    if len(found) != 1:
        which = "the schema object given" if schema else "exactly one schema object"
        raise ContractError(
            f"{which} must bind a labels topic (qstreams.prediction with labels: {{topic, predictionId, label, "
            f"horizon}}); found {len(found)}" + ("" if schema or not found else ": choose one with --schema"),
            path=contract.path, line=candidates[0].line if len(candidates) == 1 else None,
        )  # fmt: skip
    obj, spec = found[0]
    assert spec.labels is not None
    line = labels_line(contract, obj.name, obj.line)
    problem = labels_problem(spec, obj.name, obj.columns)
    if problem is not None:
        raise ContractError(problem, path=contract.path, line=line)
    if spec.labels.topic == obj.topic:
        raise ContractError(f"the labels topic {obj.topic!r} is the predictions topic; labels need their own topic",
                            path=contract.path, line=line)  # fmt: skip
    stream = obj.stream
    event_time = stream.event_time if stream else None
    window = stream.window_ms if stream and stream.window_ms is not None else round(settings.window_seconds * 1000)
    late = stream.allowed_lateness_ms if stream and stream.allowed_lateness_ms is not None else None
    return JoinSpec(
        contract=contract, schema=obj.name, predictions_topic=obj.topic, prediction=spec, labels=spec.labels,
        event_time=event_time, event_time_dtype=obj.field(event_time).dtype if event_time else LABEL_TIME,
        window_ms=window,
        lateness_ms=late if late is not None else round(settings.allowed_lateness_seconds * 1000),
        idle_ms=round(settings.window_idle_close_seconds * 1000),
        max_skew_ms=round(settings.max_clock_skew_seconds * 1000), max_message_bytes=settings.max_message_bytes,
    )  # fmt: skip


_BOM = b"\xef\xbb\xbf"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _kafka_ms(msg: Message) -> int | None:
    """The record's Kafka timestamp, None when it has none: Kafka writes -1 for "no timestamp" (and a negative
    one is invalid), which is a missing time like a missing event-time field, not the instant before the epoch."""
    stamp = msg.timestamp_ms
    return None if stamp is None or stamp < 0 else stamp


def _time_ms(record: dict[str, Any], path: tuple[str, ...], dtype: pl.DataType, fallback: int | None) -> int | None:
    """The record's time: the value at ``path`` read as the worker reads an event-time property of ``dtype``
    (ISO-8601 text in the property's zone, truncated to the millisecond; a number is no time), else (no ``path``)
    the Kafka timestamp."""
    return record_time_ms(value_at(record, path), dtype) if path else fallback


def _label_time_ms(value: Any) -> int | None:
    """A label's time: ISO-8601 text as a zone-less ``timestamp`` property reads it (naive text is UTC), a number
    of epoch milliseconds within years 1 to 9999 (a labels topic is typed by no contract; epoch ms is documented),
    or an Arrow ``timestamp`` value (naive: UTC), truncated to the millisecond."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return (aware - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if math.isfinite(value) and MIN_MS <= value <= MAX_MS else None
    return record_time_ms(value, LABEL_TIME)


def _loads(value: bytes | None) -> Any:
    """A message's JSON value; also JSON with ``NaN``, ``Infinity`` or a number beyond the double range, as Python's
    ``json.dumps`` writes a float NaN (not JSON: the worker dead-letters it, ``decode.NOT_JSON``), so that a NaN score
    is a ``bad_score`` of its prediction (:func:`_dead`), not an undecodable record, and a labels record (read by no
    worker) is read. None when it is not JSON at all."""
    if value is None:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        pass
    try:
        record = json.loads(value)
        orjson.dumps(record)  # nothing else orjson refuses (a lone surrogate "\ud800"): the state must be written
    except (ValueError, RecursionError, TypeError, orjson.JSONEncodeError):
        return None
    return record


def _pid(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)) or (isinstance(value, str) and not value):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def _label_messages(msg: Message, spec: JoinSpec) -> list[Label | Skip]:
    """A labels message: one JSON object; each line of an NDJSON message; each row of an Arrow IPC message. The
    format is chosen as the worker chooses a predictions message's (the ``content-type`` header,
    ``application/x-ndjson`` or ``application/vnd.apache.arrow.stream``; else the value: Arrow's magic bytes, or
    JSON objects on several lines). A labels topic is typed by no contract: its values are read as they are (an
    Arrow ``timestamp`` label time is that instant, a naive one UTC). A line or message that cannot be read is one
    ``undecodable`` skip; a message is one offset whatever it holds (:func:`records`)."""
    value = msg.value or b""
    ctype = content_type(msg.headers) if msg.headers else None
    if ctype == ARROW_STREAM or value.startswith(ARROW_MAGIC):
        try:
            rows = _micro(read_ipc(value)).to_pylist()
        except Exception:  # pyarrow raises several kinds on bytes that are not Arrow IPC
            return [Skip(SkipReason.UNDECODABLE)]
        return [_label(row, msg, spec) for row in rows] or [Skip(SkipReason.UNDECODABLE)]
    record = None if ctype == NDJSON else _loads(value)
    lines = [] if record is not None else [ln for ln in ndjson_lines(value.removeprefix(_BOM)) if ln.strip(b" \t\r")]
    if ctype == NDJSON or (len(lines) > 1 and isinstance(_loads(lines[0]), dict)):  # as the worker tells NDJSON
        return [_one_label(_loads(line), msg, spec) for line in lines] or [Skip(SkipReason.UNDECODABLE)]
    return [_one_label(record, msg, spec)]


def _micro(table: pa.Table) -> pa.Table:
    """``table`` with its nanosecond timestamp columns in microseconds (truncated: a label time is read to the
    millisecond), which Python's ``datetime`` holds."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type.unit == "ns":
            us = pa.timestamp("us", f.type.tz)
            table = table.set_column(i, f.with_type(us), table.column(i).cast(us, safe=False))
    return table


def _one_label(record: Any, msg: Message, spec: JoinSpec) -> Label | Skip:
    return _label(record, msg, spec) if isinstance(record, dict) else Skip(SkipReason.UNDECODABLE)


def records(msg: Message, spec: JoinSpec, decoder: MessageDecoder) -> list[Prediction | Label | Skip]:
    """The join's records of one message. A predictions message is read as the worker reads it, by ``decoder`` (a
    :class:`~streams.formats.decoder.MessageDecoder` of the predictions' schema object): one JSON object, each line of
    an NDJSON message, each row of an Arrow IPC message (the ``content-type`` header, else the value, says which); one
    ``undecodable`` :class:`Skip` per dead letter of the worker (a whole message, or one NDJSON line); records in
    their order in the message; a dead letter that is not JSON only for its NaN or infinite score is a ``bad_score``
    (:func:`_dead`). A labels message holds labels the same ways (:func:`_label_messages`)."""
    if msg.topic != spec.predictions_topic:
        return [*_label_messages(msg, spec)]
    one = decoder.record(msg)  # the common message, parsed once
    if one is not None:
        return [_prediction(one, msg, spec)]
    decoded = decoder.decode([msg])
    value, fmt = msg.value or b"", decoded.formats[0]
    lines = decoded.lines.get(0)
    found: list[tuple[int, Prediction | Label | Skip]] = []
    if fmt is Format.ARROW:  # its rows as the worker's decode reads them: each property's wire type
        for line, row in zip(decoded.line.to_list(), decoded.frame.to_dicts(), strict=True):
            found.append((line, _prediction(_nested(row), msg, spec)))
    elif fmt is not None:  # NDJSON lines, or one JSON object behind a byte order mark
        for line in decoded.line.to_list():
            text = lines[line] if lines is not None else value.removeprefix(_BOM)
            found.append((line, _prediction(orjson.loads(text), msg, spec)))
    for dead in decoded.dead:
        text = value if dead.line is None or lines is None else lines[dead.line]
        found.append((dead.line or 0, _dead(_loads(text) if dead.reason is DecodeReason.NOT_JSON else None, spec)))
    found.sort(key=lambda lr: lr[0])  # stable: the dead letters of a line after its records (none has both)
    return [r for _, r in found]


def _dead(record: Any, spec: JoinSpec) -> Skip:
    """A predictions record the worker dead-letters: ``undecodable``, unless it is a JSON object but for a NaN or
    infinite score (``NaN``, ``Infinity``, ``1e400``, as Python's ``json.dumps`` writes a float NaN: :func:`_loads`),
    then a ``bad_score``, the cause named. A NaN elsewhere in it leaves it ``undecodable``: the worker neither
    validates nor profiles it, and the join does not count it either."""
    score = record.get(spec.prediction.score) if isinstance(record, dict) else None
    if isinstance(score, float) and not math.isfinite(score):
        return Skip(SkipReason.BAD_SCORE)
    return Skip(SkipReason.UNDECODABLE)


def _nested(row: dict[str, Any]) -> dict[str, Any]:
    """A decoded row (nested fields named by their dotted path) as the record it was: ``{"a.b": 1}`` is
    ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for name, v in row.items():
        *outer, last = name.split(".")
        node = out
        for key in outer:
            node = node.setdefault(key, {})
        node[last] = v
    return out


def _prediction(record: dict[str, Any], msg: Message, spec: JoinSpec) -> Prediction | Skip:
    ps = spec.prediction
    pid = _pid(record.get(ps.prediction_id or ""))
    t = _time_ms(record, spec.event_time_path, spec.event_time_dtype, _kafka_ms(msg))
    score = record.get(ps.score)
    if pid is None:
        return Skip(SkipReason.NO_ID)
    if t is None:
        return Skip(SkipReason.BAD_TIME)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
        return Skip(SkipReason.BAD_SCORE)
    if ps.positive_label is not None and ps.label is not None:
        predicted = label_positive(record.get(ps.label), ps.positive_label)  # as the confidence profiles
        if predicted is None:
            return Skip(SkipReason.BAD_LABEL)
        positive = predicted
    else:
        positive = score >= ps.decision_threshold
    raw_version = record.get(ps.model_version) if ps.model_version else NO_VERSION
    version = "" if raw_version is None else str(raw_version)
    return Prediction(pid, t, version, float(score), positive)


def _label(record: dict[str, Any], msg: Message, spec: JoinSpec) -> Label | Skip:
    ps, ls = spec.prediction, spec.labels
    pid = _pid(record.get(ls.prediction_id))
    t = _label_time_ms(record.get(ls.label_time)) if ls.label_time else _kafka_ms(msg)
    if pid is None:
        return Skip(SkipReason.NO_ID)
    if t is None:
        return Skip(SkipReason.BAD_TIME)
    value = record.get(ls.label)
    if isinstance(value, bool):
        return Label(pid, t, value)
    actual = None if ps.positive_label is None else label_positive(value, ps.positive_label)
    if actual is None:
        return Skip(SkipReason.BAD_LABEL)  # an object or array is no label: not a negative
    return Label(pid, t, actual)
