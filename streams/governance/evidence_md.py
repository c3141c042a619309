"""The Markdown of an evidence bundle (:mod:`streams.governance.evidence`): pure rendering, no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

if TYPE_CHECKING:
    from streams.contracts.diff import ContractDiff
    from streams.governance.evidence import ContractVersion

__all__ = ["render_evidence"]


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", "<br>")


def _seconds(value: Any) -> str:
    return "–" if value is None else f"{value:g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    if not rows:
        return ["_none_", ""]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*out, ""]


def _ms(value: int | None, default: str) -> str:
    return default if value is None else f"{value / 1000:g} s"


def _versions(versions: Sequence[ContractVersion], events: pl.DataFrame) -> list[str]:
    seen = events.group_by("contract_sha256").len() if not events.is_empty() else None
    counts = dict(seen.iter_rows()) if seen is not None else {}
    rows = [
        (v.contract.version, v.contract.status, f"`{v.contract.sha256}`", v.origin, v.committed_at,
         counts.get(v.contract.sha256, 0))
        for v in versions
    ]  # fmt: skip
    lines = ["## 1. Contract versions", ""]
    lines += _table(("version", "status", "sha256", "from", "committed", "archived events"), rows)
    unknown = sorted(set(counts) - {v.contract.sha256 for v in versions} - {None})
    if unknown:
        lines += [f"Events in the archive name {len(unknown)} contract version(s) not among these files: "
                  + ", ".join(f"`{u}`" for u in unknown), ""]  # fmt: skip
    return lines


def _diffs(diffs: Sequence[ContractDiff]) -> list[str]:
    lines = ["### Changes between versions", ""]
    if not diffs:
        return [*lines, "_one version: nothing to compare_", ""]
    for d in diffs:
        check = d.semver()
        lines += [f"#### {d.old.version} → {d.new.version}: {'OK' if check.ok else 'FAIL'} — {check.message}", ""]
        rows = []
        for c in d.changes:
            change = c.as_dict()
            old, new = orjson.dumps(change["old"]).decode(), orjson.dumps(change["new"]).decode()
            yes = ("yes" if c.breaks_producers else "no", "yes" if c.breaks_consumers else "no")
            rows.append((str(c.kind), c.where, old, new, *yes, str(c.bump)))
        lines += _table(("change", "where", "old", "new", "breaks producers", "breaks consumers", "bump"), rows)
    return lines


def _owners(plan: Mapping[str, Any], ownership: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["## 2. Owners and roles", ""]
    lines += _table(
        ("team", "owners", "support channel", "support URL", "runbook"),
        [(ownership.get("team"), ", ".join(ownership.get("owners") or []) or None, ownership.get("support_channel"),
          ownership.get("support_url"), ownership.get("runbook_url"))],
    )  # fmt: skip
    lines += _table(("member", "role", "in", "out", "current"),
                    [(m["member"], m["role"], m["date_in"], m["date_out"], "yes" if m["current"] else "no")
                     for m in members])  # fmt: skip
    return lines


def _plan(plan: Mapping[str, Any]) -> list[str]:
    lines = ["## 3. Monitoring plan", ""]
    for problem in plan.get("problems") or []:
        lines.append(f"- **Problem:** {problem}")
    for s in plan["schemas"]:
        st = s["stream"]
        lines += [f"### Schema object `{s['name']}` (topic `{s['topic']}`)", ""]
        lines += [
            f"- Event time: {st['event_time']}; window: {_ms(st['window_ms'], 'default (STREAMS_WINDOW_SECONDS)')}; "
            f"allowed lateness: {_ms(st['allowed_lateness_ms'], 'default')}; "
            f"uniqueness horizon: {_ms(st['unique_within_ms'], 'default')}",
        ]
        drift = s["drift"]
        ref = f"`{drift['reference']}` (sha256 `{drift['reference_sha256']}`)" if drift["reference"] else "none"
        lines += [f"- Drift reference profile: {ref}"]
        for field, setting in (drift.get("fields") or {}).items():
            lines.append(f"- Drift of `{field}`: {orjson.dumps(setting).decode()}")
        if drift.get("prediction"):
            lines.append(f"- Prediction fields: {orjson.dumps(drift['prediction']).decode()}")
        lines += [f"- Problem: {p}" for p in s["problems"]]
        lines += ["", "Rules:", ""]
        lines += _table(("rule", "column", "check", "severity", "threshold", "dimension", "line"),
                        [(r["name"], r["column"], r["check"], r["severity"], r["threshold"], r["dimension"], r["line"])
                         for r in s["rules"]])  # fmt: skip
        lines += ["Response policies:", ""]
        lines += _table(
            ("policy", "condition", "for windows", "severity", "action", "model version", "cooldown s", "resolve"),
            [(p["name"], p["condition"], p["for"], p["severity"], p["action"], p["model_version"],
              p["cooldown_seconds"], f"after {p['resolve_after']} window(s)"
              + (f" where {p['resolve_condition']}" if p["resolve_condition"] else ""))
             for p in s["policies"]],
        )  # fmt: skip
    return lines


def _windows(windows: pl.DataFrame, batches: pl.DataFrame) -> list[str]:
    lines = ["## 4. Events per window", "", "Event-time windows (stream semantics: `window.summary` and the "
             "events of its window).", ""]  # fmt: skip
    if windows.is_empty():
        lines += ["_no archived events in the period_", ""]
    else:
        wcols = ("schema", "contract_version", "window_start", "window_end", "events", "summaries", "violations",
                 "drift_events", "confidence_events", "policy_events", "records", "quarantined", "passed")  # fmt: skip
        lines += _table(wcols, windows.select(wcols).rows())
    if batches.is_empty():
        return lines
    lines += ["### Events per batch (not event-time windows)", "",
              f"{batches.height} worker batch(es) judged without stream time (`batch.summary`, `rule.violation` "
              "with `scope: batch`, a batch's `schema.drift`): the span is the batch's event times, not a window, "
              "and a batch is counted in none of the windows above (`batches.parquet`).", ""]  # fmt: skip
    cols = ("schema", "contract_version", "window_start", "window_end", "events", "summaries", "violations",
            "schema_drift_events",
            "rows", "quarantined", "dead_lettered", "passed")  # fmt: skip
    return lines + _table(cols, batches.select(cols).rows())


def _incidents(incidents: pl.DataFrame) -> list[str]:
    lines = ["## 5. Incidents: violation → policy → action → owner → resolution", ""]
    if incidents.is_empty():
        return [*lines, "_no incident in the period_", ""]
    for r in incidents.iter_rows(named=True):
        windows = orjson.loads(r["trigger_windows"])
        evidence = ", ".join(f"{w.get('start')}–{w.get('end')}: {w.get('value')}" for w in windows)
        resolution = "**still open**"
        if r["status"] == "resolved":
            by = f" by {r['resolved_by']}" if r["resolved_by"] else ""
            resolution = (
                f"{r['resolved_how']} at {_cell(r['resolved_at'])} after {_seconds(r['duration_seconds'])} s{by} "
                f"(event `{r['resolved_event']}`)"
            )
        lines += [
            f"### Incident `{r['incident_id']}` — {r['policy']} ({r['severity']})", "",
            f"1. **Violation**: {r['condition']} held on {evidence}",
            *[f"   - {v}" for v in (r["violations"] or "").splitlines()],
            f"2. **Policy**: `{r['policy']}` of schema object `{r['schema']}`, contract version "
            f"{r['contract_version']}; opened at {_cell(r['opened_at'])} (event `{r['triggered_event']}`)",
            f"3. **Action**: {r['action']}" + (f" (model version {r['model_version']})" if r["model_version"] else "")
            + ("; recorded: " + ", ".join((r["actions_taken"] or "").splitlines()) if r["actions_taken"] else
               "; no action event archived"),
            f"4. **Owner**: team {_cell(r['owner_team'])}, owners {_cell(r['owners'])}, channel "
            f"{_cell(r['support_channel'])}, runbook {_cell(r['runbook_url'])}",
            f"5. **Resolution**: {resolution}", "",
        ]  # fmt: skip
    return lines


def render_evidence(
    *,
    versions: Sequence[ContractVersion],
    diffs: Sequence[ContractDiff],
    members: Sequence[Mapping[str, Any]],
    plan: Mapping[str, Any],
    tables: Mapping[str, pl.DataFrame],
    digests: Mapping[str, str],
    archive: Path | None,
    since: dt.datetime | None,
) -> str:
    """The whole ``evidence.md``."""
    current = versions[-1].contract
    events, incidents = tables["events"], tables["incidents"]
    period = "all archived events" if since is None else f"events since {_cell(since)}"
    source = f"archive `{archive}`, {period}" if archive else "no archive given: plan and versions only"
    open_count = incidents.filter(pl.col("status") == "open").height if not incidents.is_empty() else 0
    lines = [
        f"# Evidence bundle: {current.name or current.id}", "",
        f"- Contract `{current.id}`, current version {current.version} (sha256 `{current.sha256}`), "
        f"status {current.status}",
        f"- Source: {source}; {events.height} event(s), {incidents.height} incident(s) ({open_count} open)",
        f"- Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%SZ} by `qstreams evidence`", "",
    ]  # fmt: skip
    lines += _versions(versions, events) + _diffs(diffs)
    lines += _owners(plan, current.ownership.as_dict(), members)
    lines += _plan(plan) + _windows(tables["windows"], tables["batches"]) + _incidents(incidents)
    lines += ["## 6. Files of this bundle", "", "Check them with `sha256sum -c SHA256SUMS`.", ""]
    lines += _table(("file", "sha256"), [(f"`{k}`", f"`{v}`") for k, v in sorted(digests.items())])
    return "\n".join(lines)
