"""OpenLineage: one run event per window summary, with data-quality facets on the Kafka dataset.

Optional extra (``pip install 'quality-streams[openlineage]'``): the OpenLineage Python client is
imported when a function here is called, never at import time.

Each ``io.qualitystreams.window.summary.v1`` event becomes a ``COMPLETE`` run event of the job
``<contract id>.<schema object>`` (namespace ``qstreams``; the contract version and sha256 are in the
job's documentation), whose input is the source topic as an OpenLineage Kafka dataset (namespace
``kafka://<bootstrap host:port>``, name the topic) with:

* ``dataQualityAssertions`` — one assertion per check of the window: the check, its column, whether
  it passed, its severity, the threshold (``expected``) and the measured failures (``actual``);
* ``dataQualityMetrics`` — the window's ``rowCount`` (its ``rows``: the records the checks evaluated, not the
  dead letters) and, per column with a completeness check, its ``nullCount`` (the failures of
  ``<column>:required``) and ``count``.

Every facet names quality-streams (:data:`PRODUCER`) as its ``_producer``. A summary whose data is not one is
skipped with a log line (:func:`emit_window_summaries`).

The run facet ``nominalTime`` is the window. The run id is a UUID derived from the summary's event id,
so the same window emitted twice (a replay, a re-run of ``qstreams lineage``) is the same run.
Events go out through the client's transports (HTTP, Kafka, file, console …), configured the
OpenLineage way (``openlineage.yml``, ``OPENLINEAGE_*`` variables) or passed in.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from streams.errors import EventDataError, SettingsError
from streams.events.types import EventType, iso_utc, parse_utc

if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import RunEvent

__all__ = [
    "JOB_NAMESPACE",
    "PRODUCER",
    "client_for",
    "emit_window_summaries",
    "kafka_namespace",
    "lineage_observer",
    "window_run_event",
]

log = logging.getLogger(__name__)

JOB_NAMESPACE: Final = "qstreams"
PRODUCER: Final = "https://github.com/quality-streams/quality-streams"
_RUN_NAMESPACE: Final = uuid.UUID("6f1b2c3d-4e5f-5a6b-8c7d-9e0f1a2b3c4d")


def _require() -> None:
    try:
        import openlineage.client  # noqa: F401
    except ImportError:
        raise SettingsError(
            "OpenLineage output needs the openlineage-python client; install it with "
            "pip install 'quality-streams[openlineage]'."
        ) from None


def kafka_namespace(bootstrap_servers: str) -> str:
    """The OpenLineage dataset namespace of a Kafka cluster: ``kafka://<first bootstrap host:port>``."""
    first = bootstrap_servers.split(",", 1)[0].strip().removeprefix("kafka://")
    return f"kafka://{first}"


def _text(value: Any) -> str | None:
    """A string field of a check as the facet wants it (a string; another type counts as absent)."""
    return value if isinstance(value, str) else None


def _count(value: Any) -> int | None:
    """A count as the facet wants it (an integer; another type counts as absent)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _checks(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    checks = data.get("checks")
    return [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []


def _assertions(checks: Iterable[Mapping[str, Any]]) -> list[Any]:
    from openlineage.client.generated.data_quality_assertions_dataset import Assertion

    out = []
    for c in checks:
        failures, threshold = _count(c.get("failures")), c.get("threshold")
        out.append(Assertion(
            assertion=_text(c.get("check")) or _text(c.get("name")) or "unknown", success=c.get("passed") is True,
            column=_text(c.get("column")), severity=_text(c.get("severity")), name=_text(c.get("name")),
            expected=None if threshold is None or isinstance(threshold, dict | list) else str(threshold),
            actual=None if failures is None else str(failures),
        ))  # fmt: skip
    return out


def _column_metrics(data: Mapping[str, Any]) -> dict[str, Any]:
    from openlineage.client.generated.data_quality_metrics_input_dataset import ColumnMetrics

    rows = _count(data.get("rows"))
    out = {}
    for c in _checks(data):
        column, name = _text(c.get("column")), _text(c.get("name")) or ""
        if column and name.endswith(":required"):
            out[column] = ColumnMetrics(nullCount=_count(c.get("failures")) or 0, count=rows)
    return out


def _window(data: Any) -> tuple[Mapping[str, Any], str, str, str, str]:
    """(contract, schema, topic, window start, window end) of a window summary's data, the times as ISO-8601 UTC;
    :class:`EventDataError` when the data is not a window summary's (another producer's, a broken one)."""
    try:
        contract, window = data["contract"], data["window"]
        if not all(isinstance(v, str) for v in (contract.get("id"), data.get("schema"), data.get("topic"))):
            raise TypeError("contract.id, schema and topic must be strings")
        start, end = (iso_utc(parse_utc(window[k])) for k in ("start", "end"))
        return contract, data["schema"], data["topic"], start, end
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise EventDataError(f"A window.summary event's data is not one ({type(exc).__name__}: {exc}).") from exc


def window_run_event(summary_id: str, data: Mapping[str, Any], *, namespace: str) -> RunEvent:
    """The run event of one window summary (``summary_id`` its CloudEvent id, ``data`` its data)."""
    _require()
    from openlineage.client.event_v2 import InputDataset, Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import (
        data_quality_assertions_dataset,
        data_quality_metrics_input_dataset,
        documentation_job,
        nominal_time_run,
    )

    contract, schema, topic, start, end = _window(data)
    facets = {
        "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=_assertions(_checks(data)), producer=PRODUCER
        ),
        # the rows the checks evaluated (`rows`): `records` counts the dead letters too, which no check saw
        "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
            columnMetrics=_column_metrics(data), rowCount=_count(data.get("rows")), producer=PRODUCER
        ),
    }
    doc = (f"Contract {contract['id']} version {contract.get('version')} (sha256 {contract.get('sha256')}), "
           f"schema object {schema}, enforced by quality-streams.")  # fmt: skip
    return RunEvent(
        eventType=RunState.COMPLETE if data.get("passed") is True else RunState.FAIL,
        eventTime=end,
        run=Run(
            runId=str(uuid.uuid5(_RUN_NAMESPACE, summary_id)),
            facets={
                "nominalTime": nominal_time_run.NominalTimeRunFacet(
                    nominalStartTime=start, nominalEndTime=end, producer=PRODUCER
                )
            },
        ),
        job=Job(
            namespace=JOB_NAMESPACE,
            name=f"{contract['id']}.{schema}",
            facets={"documentation": documentation_job.DocumentationJobFacet(description=doc, producer=PRODUCER)},
        ),
        inputs=[InputDataset(namespace=namespace, name=topic, inputFacets=facets)],
        producer=PRODUCER,
    )


def client_for(file: str | None = None) -> OpenLineageClient:
    """An OpenLineage client: the file transport writing one JSON event per line to ``file`` when given,
    else the client's own configuration (``openlineage.yml``, ``OPENLINEAGE_URL`` …)."""
    _require()
    from openlineage.client import OpenLineageClient

    if file is None:
        return OpenLineageClient()
    return OpenLineageClient(config={"transport": {"type": "file", "log_file_path": file, "append": True}})


def emit_window_summaries(events: Iterable[tuple[str, str, Mapping[str, Any]]], client: Any, *, namespace: str) -> int:
    """Emit a run event per window summary among ``events`` (``(event id, type, data)``); how many were sent.

    A summary whose data is not one (another producer's, a broken one) is skipped with a log line: the others
    are still emitted."""
    sent = 0
    for eid, event_type, data in events:
        if event_type != str(EventType.WINDOW_SUMMARY):
            continue
        try:
            event = window_run_event(eid, data, namespace=namespace)
        except EventDataError as exc:
            log.warning("Skipped the window summary %s: no OpenLineage run event for it: %s", eid, exc)
            continue
        client.emit(event)
        sent += 1
    return sent


def lineage_observer(bootstrap_servers: str, file: str | None = None, *, client: Any = None) -> Callable[[Any], None]:
    """An ``on_batch`` observer of the archiver: a run event per window summary the batch archived.

    Best effort: the archive is the record. A transport that fails is logged, and the archiver goes on;
    ``qstreams lineage --from ARCHIVE`` emits the same runs again later (same run ids).
    """
    import orjson

    client = client if client is not None else client_for(file)
    namespace = kafka_namespace(bootstrap_servers)

    def observe(result: Any) -> None:
        rows = [
            (eid, kind, orjson.loads(data))
            for eid, kind, data in result.events
            if kind == str(EventType.WINDOW_SUMMARY)
        ]
        try:
            emit_window_summaries(rows, client, namespace=namespace)
        except Exception as exc:  # a lineage backend down must not stop the audit archive
            log.warning(
                "Could not emit %d OpenLineage run event(s): %s; re-emit with qstreams lineage.", len(rows), exc
            )

    return observe
