"""Tables derived from archived events (:func:`~streams.governance.archive.read_archive`), for evidence and report.

Pure functions from the archive frame to polars frames: per-window counts and verdicts (and, apart from them,
per-batch counts of the batch-scope events a worker without stream time emits), rule
failure rates, drift per field, confidence per model version, and incidents traced from their
violation (the failing checks of the windows that triggered them) through the policy and its
action to the owner and the resolution. Each returns a frame of a fixed schema, empty when the
archive has no such event.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import orjson
import polars as pl

from streams.events.types import EventType

__all__ = [
    "batch_table", "confidence_table", "drift_table", "event_scope", "incident_table", "incidents_open_at",
    "rule_table", "window_table",
]  # fmt: skip

log = logging.getLogger(__name__)

_UTC = pl.Datetime("us", "UTC")
#: a window (or batch span) as one contract version judged it: two versions of a window are two verdicts
_WINDOW_KEY: Final = ["contract_id", "contract_version", "schema", "window_start", "window_end"]

WINDOWS_SCHEMA: Final = {
    "scope": pl.String(),
    "contract_id": pl.String(), "contract_version": pl.String(), "schema": pl.String(), "window_start": _UTC,
    "window_end": _UTC, "events": pl.Int64(), "summaries": pl.Int64(), "violations": pl.Int64(),
    "drift_events": pl.Int64(), "confidence_events": pl.Int64(), "policy_events": pl.Int64(),
    "records": pl.Int64(), "quarantined": pl.Int64(), "dead_lettered": pl.Int64(), "passed": pl.Boolean(),
}  # fmt: skip
BATCHES_SCHEMA: Final = {
    "scope": pl.String(),
    "contract_id": pl.String(), "contract_version": pl.String(), "schema": pl.String(), "window_start": _UTC,
    "window_end": _UTC, "events": pl.Int64(), "summaries": pl.Int64(), "violations": pl.Int64(),
    "schema_drift_events": pl.Int64(), "rows": pl.Int64(), "valid": pl.Int64(), "quarantined": pl.Int64(),
    "dead_lettered": pl.Int64(), "passed": pl.Boolean(),
}  # fmt: skip
RULES_SCHEMA: Final = {
    "contract_id": pl.String(), "contract_version": pl.String(), "schema": pl.String(), "window_start": _UTC,
    "window_end": _UTC,
    "rule": pl.String(), "column": pl.String(), "severity": pl.String(), "failures": pl.Int64(),
    "failure_rate": pl.Float64(), "passed": pl.Boolean(),
}  # fmt: skip
DRIFT_SCHEMA: Final = {
    "contract_id": pl.String(), "contract_version": pl.String(), "schema": pl.String(), "window_start": _UTC,
    "window_end": _UTC,
    "field": pl.String(), "verdict": pl.String(), "method": pl.String(), "value": pl.Float64(),
    "threshold": pl.Float64(),
}  # fmt: skip
CONFIDENCE_SCHEMA: Final = {
    "contract_id": pl.String(), "contract_version": pl.String(), "schema": pl.String(), "window_start": _UTC,
    "window_end": _UTC,
    "model_version": pl.String(), "count": pl.Int64(), "mean_confidence": pl.Float64(),
    "low_confidence_share": pl.Float64(), "verdict": pl.String(),
    "confidence_p10": pl.Float64(), "confidence_p50": pl.Float64(), "confidence_p90": pl.Float64(),
}  # fmt: skip
#: the quantiles of the confidence events' ``confidence_distribution`` the confidence table keeps (null in events of
#: older workers and for a version without a valid score)
_CONFIDENCE_QUANTILES: Final = ("p10", "p50", "p90")
INCIDENTS_SCHEMA: Final = {
    "incident_id": pl.String(), "contract_id": pl.String(), "contract_version": pl.String(), "schema": pl.String(),
    "policy": pl.String(), "condition": pl.String(), "severity": pl.String(), "action": pl.String(),
    "model_version": pl.String(), "opened_at": _UTC, "trigger_windows": pl.String(), "violations": pl.String(),
    "actions_taken": pl.String(), "owner_team": pl.String(), "owners": pl.String(), "support_channel": pl.String(),
    "runbook_url": pl.String(), "status": pl.String(), "resolved_at": _UTC, "resolved_how": pl.String(),
    "resolved_by": pl.String(), "duration_seconds": pl.Float64(), "triggered_event": pl.String(),
    "resolved_event": pl.String(),
}  # fmt: skip


def _of_type(frame: pl.DataFrame, event_type: EventType) -> pl.DataFrame:
    return frame.filter(pl.col("type") == str(event_type)).unique("id", keep="first", maintain_order=True)


def _rows(frame: pl.DataFrame) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(archive row, parsed data) of each row."""
    for row in frame.iter_rows(named=True):
        yield row, orjson.loads(row["data"])


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (a field of the wrong type counts as absent)."""
    return value if isinstance(value, dict) else {}


def _objs(value: Any) -> list[dict[str, Any]]:
    """The JSON objects of ``value`` when it is a list (other items and other types count as absent)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _fit(value: Any, dtype: pl.DataType) -> Any:
    """``value`` as a cell of ``dtype``, or None when it is of another type: the archive keeps any CloudEvent of
    the topic (another producer's, an older or a broken one), and one such event must not stop the tables."""
    if value is None or isinstance(dtype, pl.Datetime):  # datetimes come from the archive's own columns
        return value
    if isinstance(dtype, pl.Boolean):
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):  # a Boolean is neither a count, a number nor a text
        return None
    if isinstance(dtype, pl.Int64):
        return value if isinstance(value, int) and -(2**63) <= value < 2**63 else None
    if isinstance(dtype, pl.Float64):
        try:
            return float(value) if isinstance(value, int | float) else None
        except OverflowError:
            return None
    return value if isinstance(value, str) else None


def _frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    """The frame of ``rows`` with every cell fitted to its column's type (:func:`_fit`)."""
    return pl.DataFrame([{k: _fit(r.get(k), t) for k, t in schema.items()} for r in rows], schema=schema)


def _key(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in _WINDOW_KEY}


def event_scope() -> pl.Expr:
    """``"batch"`` for the events that describe one worker batch (its span is in ``window``, but it is no
    event-time window): ``batch.summary``, ``rule.violation`` with ``scope: batch`` and a batch's ``schema.drift``
    (the window's carries ``never_present``); ``"window"`` for the others."""
    kind, data = pl.col("type"), pl.col("data")
    batch = (
        (kind == str(EventType.BATCH_SUMMARY))
        | (data.str.json_path_match("$.scope") == "batch")
        | ((kind == str(EventType.SCHEMA_DRIFT)) & data.str.json_path_match("$.never_present").is_null())
    )
    return pl.when(batch).then(pl.lit("batch")).otherwise(pl.lit("window"))


def _spans(frame: pl.DataFrame, scope: str) -> pl.DataFrame:
    """The events with a span (``window_start``) and a schema, of one scope."""
    spanned = frame.filter(pl.col("window_start").is_not_null() & pl.col("schema").is_not_null())
    return spanned.filter(event_scope() == scope)


def _window_verdict(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d.get(k) for k in ("records", "quarantined", "dead_lettered", "passed")}


def _batch_verdict(d: dict[str, Any]) -> dict[str, Any]:
    counts = _obj(d.get("counts"))
    return {"rows": d.get("rows"), **{k: counts.get(k) for k in ("valid", "quarantined", "dead_lettered")},
            "passed": d.get("passed")}  # fmt: skip


def _span_table(
    spanned: pl.DataFrame, scope: str, table: dict[str, Any], summary_type: EventType, kinds: dict[str, list[str]]
) -> pl.DataFrame:
    """One row per (contract, schema, span) of ``spanned``: events per kind and the summary's counts and verdict."""
    if spanned.is_empty():
        return pl.DataFrame(schema=table)
    verdict = _window_verdict if scope == "window" else _batch_verdict
    counts = spanned.group_by(_WINDOW_KEY).agg(
        pl.len().cast(pl.Int64).alias("events"),
        *[pl.col("type").is_in(types).sum().cast(pl.Int64).alias(name) for name, types in kinds.items()],
    )
    verdicts = [{**_key(row), **verdict(d)} for row, d in _rows(_of_type(spanned, summary_type))]
    summary_schema = {k: table[k] for k in (*_WINDOW_KEY, *verdict({}))}
    summary = _frame(verdicts, summary_schema).unique(_WINDOW_KEY, keep="last")
    joined = counts.join(summary, on=_WINDOW_KEY, how="left", nulls_equal=True).with_columns(scope=pl.lit(scope))
    return joined.select(list(table)).cast(table).sort("contract_id", "schema", "window_start", "contract_version")  # type: ignore[arg-type]


def window_table(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per (contract, contract version, schema, event-time window): events per kind and the window's verdict
    (two versions judging one window, as during a rolling deploy or a re-judgement, are two rows).

    Batch-scope events are no window (see :func:`event_scope`): they are in :func:`batch_table`, not here."""
    kinds = {
        "summaries": [str(EventType.WINDOW_SUMMARY)],
        "violations": [str(EventType.RULE_VIOLATION)],
        "drift_events": [str(EventType.DISTRIBUTION_DRIFT)],
        "confidence_events": [str(EventType.PREDICTION_CONFIDENCE)],
        "policy_events": [str(EventType.POLICY_TRIGGERED), str(EventType.POLICY_RESOLVED)],
    }
    return _span_table(_spans(frame, "window"), "window", WINDOWS_SCHEMA, EventType.WINDOW_SUMMARY, kinds)


def batch_table(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per (contract, schema, batch span) of the batch-scope events (``scope`` ``batch``): a worker
    without stream time (or with ``STREAMS_BATCH_EVENTS``) judges each poll's batch, not an event-time window.
    ``rows`` (validated), ``valid``, ``quarantined``, ``dead_lettered`` and ``passed`` come from its
    ``batch.summary``."""
    kinds = {
        "summaries": [str(EventType.BATCH_SUMMARY)],
        "violations": [str(EventType.RULE_VIOLATION)],
        "schema_drift_events": [str(EventType.SCHEMA_DRIFT)],
    }
    return _span_table(_spans(frame, "batch"), "batch", BATCHES_SCHEMA, EventType.BATCH_SUMMARY, kinds)


def rule_table(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per (contract version, window, rule) from the window summaries."""
    rows = [
        {**_key(row), "rule": c.get("name"), "column": c.get("column"), "severity": c.get("severity"),
         "failures": c.get("failures"), "failure_rate": c.get("failure_rate"), "passed": c.get("passed")}
        for row, d in _rows(_of_type(frame, EventType.WINDOW_SUMMARY))
        for c in _objs(d.get("checks"))
    ]  # fmt: skip
    return _frame(rows, RULES_SCHEMA).sort("rule", "window_start")


def drift_table(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per (window, field) from the drift events: the judged method's value and threshold."""
    rows = []
    for row, d in _rows(_of_type(frame, EventType.DISTRIBUTION_DRIFT)):
        for f in _objs(d.get("fields")):
            metrics = _objs(f.get("metrics"))
            judged = next((m for m in metrics if m.get("metric") == f.get("method")), metrics[0] if metrics else {})
            rows.append({**_key(row), "field": f.get("field"), "verdict": f.get("verdict"), "method": f.get("method"),
                         "value": judged.get("value"), "threshold": judged.get("threshold")})  # fmt: skip
    return _frame(rows, DRIFT_SCHEMA).sort("field", "window_start")


def confidence_table(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per (window, model version) from the prediction-confidence events, with the 10th, 50th and 90th
    percentiles of the confidence (``confidence_p10`` …, from ``confidence_distribution``; null when absent)."""
    rows = [
        {**_key(row), "model_version": d.get("model_version"), "count": d.get("count"),
         "mean_confidence": d.get("mean_confidence"), "low_confidence_share": d.get("low_confidence_share"),
         "verdict": d.get("verdict"),
         **{f"confidence_{q}": _obj(_obj(d.get("confidence_distribution")).get("confidence_quantiles")).get(q)
            for q in _CONFIDENCE_QUANTILES}}
        for row, d in _rows(_of_type(frame, EventType.PREDICTION_CONFIDENCE))
    ]  # fmt: skip
    return _frame(rows, CONFIDENCE_SCHEMA).sort("model_version", "window_start")


def _violations(
    rules: pl.DataFrame, drift: pl.DataFrame, row: dict[str, Any], policy: dict[str, Any], windows: list[Any]
) -> list[str]:
    """What was seen in the trigger windows: the failing checks (of the policy's rule, for a rule metric) or the
    drift of the policy's field (for a drift metric), from the archived window and drift events."""
    metric, subject = _fit(policy.get("metric"), pl.String()) or "", _fit(policy.get("subject"), pl.String())
    starts = [_second(w.get("start")) for w in windows if isinstance(w, dict)]
    if row["schema"] is None or row["contract_id"] is None:
        return []
    mine = (pl.col("contract_id") == row["contract_id"]) & (pl.col("schema") == row["schema"])
    mine &= pl.col("contract_version").eq_missing(row["contract_version"])  # the version that decided
    at = pl.col("window_start").dt.strftime("%Y-%m-%dT%H:%M:%SZ").is_in(starts)
    out = []
    if metric.startswith("drift."):
        for r in drift.filter(mine & at & (pl.col("field") == subject)).iter_rows(named=True):
            out.append(f"{r['window_start']:%Y-%m-%dT%H:%M:%SZ}: {r['field']} {r['method']} = {_cell(r['value'])} "
                       f"(threshold {_cell(r['threshold'])}, verdict {r['verdict']})")  # fmt: skip
        return out
    failing = rules.filter(mine & at & ~pl.col("passed"))
    if metric.startswith("rule.") and subject:
        failing = failing.filter(pl.col("rule") == subject)
    for r in failing.iter_rows(named=True):
        rate = "" if r["failure_rate"] is None else f" ({r['failure_rate']:.2%})"
        out.append(f"{r['window_start']:%Y-%m-%dT%H:%M:%SZ}: {r['rule']} failed, {r['failures']} record(s){rate}")
    return out


def _cell(value: Any) -> str:
    return "–" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _second(text: Any) -> str:
    """An ISO time cut to whole seconds with ``Z`` (event data carries ms or none)."""
    s = str(text or "")
    return s[:19] + "Z" if len(s) >= 19 else s


def _incident_id(row: dict[str, Any], d: dict[str, Any]) -> str | None:
    """The incident a policy event names (``data.incident.id``); None, with a log line, when it names none."""
    iid = _obj(d.get("incident")).get("id")
    if isinstance(iid, str) and iid:
        return iid
    log.warning("Skipped the archived %s event %s: its data names no incident (data.incident.id).",
                row["type"], row["id"])  # fmt: skip
    return None


_POLICY_EVENTS: Final = (EventType.POLICY_TRIGGERED, EventType.POLICY_RESOLVED, EventType.POLICY_ACTION)


def incidents_open_at(root: str | Path, since: dt.datetime, contract: str | None = None) -> pl.DataFrame:
    """The archived events before ``since`` of the incidents still open at ``since`` (triggered before it, not
    resolved before it): their ``policy.triggered`` and ``policy.action`` events and the window summaries and
    drift events from their first trigger window on. Give them to :func:`incident_table` as ``earlier``: an
    incident opened before a period and resolved in it, or open all through it, is an incident of the period."""
    from streams.governance.archive import read_archive

    policy = read_archive(root, until=since, contract=contract, types=[str(t) for t in _POLICY_EVENTS])
    ids = pl.col("data").str.json_path_match("$.incident.id")
    resolved = set(policy.filter(pl.col("type") == str(EventType.POLICY_RESOLVED)).select(ids).to_series())
    triggered = policy.filter(pl.col("type") == str(EventType.POLICY_TRIGGERED))
    carried = set(triggered.select(ids).to_series().drop_nulls()) - resolved
    if not carried:
        return policy.clear()
    policy = policy.filter(ids.is_in(list(carried)) & (pl.col("type") != str(EventType.POLICY_RESOLVED)))
    starts = [row["time"] for row in policy.iter_rows(named=True)]
    for _, d in _rows(policy.filter(pl.col("type") == str(EventType.POLICY_TRIGGERED))):
        for w in _objs(d.get("windows")):
            try:
                starts.append(dt.datetime.fromisoformat(str(w.get("start")).replace("Z", "+00:00")))
            except ValueError:
                continue
    first = min(s if s.tzinfo else s.replace(tzinfo=dt.UTC) for s in starts)
    kinds = [str(EventType.WINDOW_SUMMARY), str(EventType.DISTRIBUTION_DRIFT)]
    context = read_archive(root, since=first, until=since, contract=contract, types=kinds)
    return pl.concat([policy, context]).sort("time", "id")


def incident_table(frame: pl.DataFrame, earlier: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per incident: violation → policy → action → owner → resolution.

    ``violations``: the failing checks of the windows that triggered it (from the window summaries);
    ``actions_taken``: every other archived event that names the incident (``data.incident.id``), as
    ``type@time``, so action and quarantine events land in the trace when they are archived. ``earlier``
    (:func:`incidents_open_at`): the events before the period of the incidents open when it began.
    """
    if earlier is not None and not earlier.is_empty():
        frame = pl.concat([earlier, frame], how="vertical_relaxed")
    rules, drift = rule_table(frame), drift_table(frame)
    resolved = {}
    for row, d in _rows(_of_type(frame, EventType.POLICY_RESOLVED)):
        if (rid := _incident_id(row, d)) is not None:
            resolved[rid] = (row, d)
    policy_types = {str(EventType.POLICY_TRIGGERED), str(EventType.POLICY_RESOLVED)}
    others: dict[str, list[str]] = {}
    mentions = frame.filter(~pl.col("type").is_in(list(policy_types)) & pl.col("data").str.contains('"incident"'))
    for row, d in _rows(mentions):
        incident = d.get("incident")
        if isinstance(incident, dict) and incident.get("id"):
            others.setdefault(str(incident["id"]), []).append(f"{row['type']}@{row['time']:%Y-%m-%dT%H:%M:%SZ}")
    rows = []
    for row, d in _rows(_of_type(frame, EventType.POLICY_TRIGGERED)):
        iid = _incident_id(row, d)
        if iid is None:
            continue
        policy, owner, action = _obj(d.get("policy")), _obj(d.get("owner")), _obj(d.get("action"))
        windows, schema = _objs(d.get("windows")), _fit(d.get("schema"), pl.String())
        owners = owner.get("owners")
        done = resolved.get(iid)
        resolution = _obj(done[1].get("resolution")) if done else {}
        rows.append({
            "incident_id": iid, "contract_id": row["contract_id"], "contract_version": row["contract_version"],
            "schema": schema, "policy": policy.get("name"), "condition": policy.get("condition"),
            "severity": policy.get("severity"), "action": action.get("type"),
            "model_version": action.get("model_version"), "opened_at": row["time"],
            "trigger_windows": orjson.dumps(windows).decode(),
            "violations": "\n".join(_violations(rules, drift, {**row, "schema": schema}, policy, windows)),
            "actions_taken": "\n".join(others.get(iid, [])), "owner_team": owner.get("team"),
            "owners": ", ".join(str(o) for o in owners) if isinstance(owners, list) else None,
            "support_channel": owner.get("support_channel"),
            "runbook_url": owner.get("runbook_url"), "status": "resolved" if done else "open",
            "resolved_at": done[0]["time"] if done else None, "resolved_how": resolution.get("how"),
            "resolved_by": resolution.get("by"), "duration_seconds": resolution.get("duration_seconds"),
            "triggered_event": row["id"], "resolved_event": done[0]["id"] if done else None,
        })  # fmt: skip
    return _frame(rows, INCIDENTS_SCHEMA).sort("opened_at", "incident_id")
