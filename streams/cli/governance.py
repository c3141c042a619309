"""``qstreams archive``, ``qstreams evidence`` and ``qstreams report``: the governance commands.

Exit codes as everywhere: ``0`` success, ``2`` usage errors (bad arguments, an archive another
archiver holds, a contract that cannot be loaded, a broker that cannot be reached).
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]

EXIT_OK, EXIT_USAGE = 0, 2


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _since(text: str | None) -> dt.datetime | None:
    """``--since``: an ISO date or datetime (UTC unless it says otherwise), or a duration back from now (``7d``)."""
    if text is None:
        return None
    from streams.contracts.stream import DurationError, parse_duration

    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    except ValueError:
        pass
    try:
        return dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=parse_duration(text))
    except DurationError:
        raise _fail(
            f"--since {text!r} is neither a date (2026-12-01, 2026-12-01T12:00Z) nor a duration (7d, 12h)"
        ) from None


def archive(
    to: Annotated[Path, typer.Option("--to", metavar="DIR", help="The archive directory (created if missing).")],
    topic: Annotated[
        str | None, typer.Option(metavar="TOPIC", help="The quality-event topic [default: STREAMS_EVENTS_TOPIC].")
    ] = None,
    retention_days: Annotated[
        int | None, typer.Option("--retention-days", min=1, metavar="N", help="Delete days older than N days.")
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option("--bootstrap-servers", metavar="HOST:PORT", help="Kafka [default: settings].")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, metavar="N", help="Records per Parquet write.")] = 500,
    idle_exit: Annotated[
        float | None,
        typer.Option("--idle-exit", min=0.0, metavar="SECONDS", help="Stop after this long without new events."),
    ] = None,
    openlineage: Annotated[
        bool,
        typer.Option(
            "--openlineage",
            help="Emit an OpenLineage run event per newly archived window summary "
            "through the transport openlineage.yml / OPENLINEAGE_* configure (extra `openlineage`).",
        ),
    ] = False,
    openlineage_file: Annotated[
        Path | None, typer.Option(metavar="FILE", help="As --openlineage, appending to FILE (the file transport).")
    ] = None,
    log_level: Annotated[str, typer.Option(metavar="LEVEL", help="Python log level.")] = "INFO",
) -> None:
    """Consume the quality-event topic into date/contract-partitioned Parquet: each event id once, resumable
    after a crash (the offsets live in DIR, written after the data), with optional retention."""
    from streams.errors import StreamsError
    from streams.governance.archive import Archive
    from streams.governance.consume import run_archiver
    from streams.settings import load_settings

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")  # fmt: skip
    overrides: dict[str, Any] = {} if bootstrap is None else {"bootstrap_servers": bootstrap}
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        settings = load_settings(**overrides)
        on_batch = None
        if openlineage or openlineage_file is not None:
            from streams.governance.lineage import lineage_observer

            on_batch = lineage_observer(
                settings.bootstrap_servers, None if openlineage_file is None else str(openlineage_file)
            )
        with Archive(to, retention_days=retention_days) as store:
            run = run_archiver(
                store, settings, topic=topic, max_records=batch, idle_exit_s=idle_exit, stop=stop, on_batch=on_batch
            )
            total = len(store)
    except StreamsError as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"archived {run.archived} event(s) ({run.duplicates} duplicate, {run.malformed} malformed, "
        f"{run.expired} expired) into {to}; {total} event(s) in the archive"
    )


def evidence(
    contract: Annotated[
        list[Path],
        typer.Option(
            "--contract",
            "-c",
            metavar="FILE",
            help="The contract file (repeat for older versions; git history is added when tracked).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Where to write the bundle.")],
    archive_dir: Annotated[
        Path | None, typer.Option("--archive", metavar="DIR", help="The archive `qstreams archive` writes.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(metavar="WHEN", help="Only events since a date, a time or a duration ago (7d).")
    ] = None,
    git_history: Annotated[bool, typer.Option(help="Add the versions of the contract file committed in git.")] = True,
) -> None:
    """Write an evidence bundle for an assessor: contract versions with hashes and diffs, owners and roles, the
    monitoring plan, event counts per window and each incident's trace, as Markdown plus Parquet. Stream
    semantics: counts are per event-time window; batch-scope events (a worker without stream time) are counted
    per batch, apart from the windows."""
    from streams.errors import StreamsError
    from streams.governance.evidence import contract_versions, write_evidence

    start = _since(since)
    try:
        versions = contract_versions(contract, git_history=git_history)
        bundle = write_evidence(versions, out, archive=archive_dir, since=start)
    except StreamsError as exc:
        raise _fail(str(exc)) from None
    open_incidents = bundle.incidents.filter(bundle.incidents["status"] == "open").height
    typer.echo(
        f"wrote {bundle.markdown} and {len(bundle.files) - 1} file(s): {len(versions)} contract version(s), "
        f"{bundle.windows.height} event-time window(s), {bundle.batches.height} batch(es) (not windows), "
        f"{bundle.incidents.height} incident(s) ({open_incidents} open)"
    )


def report(
    source: Annotated[Path, typer.Option("--from", metavar="ARCHIVE", help="The archive `qstreams archive` writes.")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    since: Annotated[
        str | None, typer.Option(metavar="WHEN", help="Only events since a date, a time or a duration ago (7d).")
    ] = None,
    contract: Annotated[str | None, typer.Option(metavar="ID", help="Only the events of this contract id.")] = None,
) -> None:
    """Write one self-contained HTML report (no network): failure rate per rule over time, window verdicts,
    drift per field as a heatmap, confidence per model version, incidents with owner and action. Stream semantics:
    verdicts and rates are per event-time window; batch-scope events are counted apart as batches."""
    from streams.errors import StreamsError
    from streams.governance.report import write_report

    start = _since(since)
    try:
        events = write_report(source, out, since=start, contract=contract)
    except StreamsError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"wrote {out} ({out.stat().st_size:,} bytes) from {events.height} event(s)")


def lineage(
    source: Annotated[Path, typer.Option("--from", metavar="ARCHIVE", help="The archive `qstreams archive` writes.")],
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            metavar="FILE",
            help="Append the events to FILE (the OpenLineage file transport) "
            "instead of the transport openlineage.yml / OPENLINEAGE_* configure.",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(metavar="WHEN", help="Only windows since a date, a time or a duration ago (7d).")
    ] = None,
    bootstrap: Annotated[
        str | None,
        typer.Option("--bootstrap-servers", metavar="HOST:PORT", help="The Kafka cluster named in the datasets."),
    ] = None,
) -> None:
    """Emit one OpenLineage run event per archived window summary, with DataQualityAssertions and
    DataQualityMetrics facets on the Kafka dataset (needs the `openlineage` extra)."""
    import orjson

    from streams.errors import StreamsError
    from streams.events.types import EventType
    from streams.governance.archive import read_archive
    from streams.governance.lineage import client_for, emit_window_summaries, kafka_namespace
    from streams.settings import load_settings

    start = _since(since)
    try:
        servers = bootstrap or load_settings().bootstrap_servers
        events = read_archive(source, since=start, types=[str(EventType.WINDOW_SUMMARY)])
        client = client_for(None if file is None else str(file))
        rows = ((r["id"], r["type"], orjson.loads(r["data"])) for r in events.iter_rows(named=True))
        sent = emit_window_summaries(rows, client, namespace=kafka_namespace(servers))
    except StreamsError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"emitted {sent} OpenLineage run event(s)" + (f" to {file}" if file else ""))


def register(app: typer.Typer) -> None:
    """Add the governance commands to the ``qstreams`` app."""
    app.command("archive")(archive)
    app.command("evidence")(evidence)
    app.command("report")(report)
    app.command("lineage")(lineage)
