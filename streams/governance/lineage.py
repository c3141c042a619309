"""OpenLineage: one run event per window summary, with data-quality facets on the Kafka dataset.

Optional extra (``pip install 'quality-streams[openlineage]'``): the OpenLineage Python client is
imported when a function here is called, never at import time.

Each ``io.qualitystreams.window.summary.v1`` event becomes a ``COMPLETE`` run event of the job
``<contract id>.<schema object>`` (namespace ``qstreams``; the contract version and sha256 are in the
job's documentation), whose input is the source topic as an OpenLineage Kafka dataset (namespace
``kafka://<bootstrap host:port>``, name the topic) with:

* ``dataQualityAssertions`` — one assertion per check of the window: the check, its column, whether
  it passed, its severity, the threshold (``expected``) and the measured failures (``actual``);
* ``dataQualityMetrics`` — the window's ``rowCount`` and, per column with a completeness check, its
  ``nullCount`` (the failures of ``<column>:required``) and ``count``.

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

from streams.errors import SettingsError
from streams.events.types import EventType

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


def _assertions(checks: Iterable[Mapping[str, Any]]) -> list[Any]:
    from openlineage.client.generated.data_quality_assertions_dataset import Assertion

    return [
        Assertion(
            assertion=str(c.get("check") or c.get("name")),
            success=bool(c.get("passed")),
            column=c.get("column"),
            severity=c.get("severity"),
            name=c.get("name"),
            expected=c.get("threshold"),
            actual=None if c.get("failures") is None else str(c.get("failures")),
        )
        for c in checks
    ]


def _column_metrics(data: Mapping[str, Any]) -> dict[str, Any]:
    from openlineage.client.generated.data_quality_metrics_input_dataset import ColumnMetrics

    rows = data.get("rows")
    out = {}
    for c in data.get("checks") or []:
        if c.get("column") and str(c.get("name", "")).endswith(":required"):
            out[str(c["column"])] = ColumnMetrics(nullCount=int(c.get("failures") or 0), count=rows)
    return out


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

    contract, window = data["contract"], data["window"]
    facets = {
        "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=_assertions(data.get("checks") or [])
        ),
        "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
            columnMetrics=_column_metrics(data), rowCount=data.get("records")
        ),
    }
    doc = (f"Contract {contract['id']} version {contract['version']} (sha256 {contract['sha256']}), "
           f"schema object {data['schema']}, enforced by quality-streams.")  # fmt: skip
    return RunEvent(
        eventType=RunState.COMPLETE if data.get("passed") else RunState.FAIL,
        eventTime=window["end"],
        run=Run(
            runId=str(uuid.uuid5(_RUN_NAMESPACE, summary_id)),
            facets={
                "nominalTime": nominal_time_run.NominalTimeRunFacet(
                    nominalStartTime=window["start"], nominalEndTime=window["end"]
                )
            },
        ),
        job=Job(
            namespace=JOB_NAMESPACE,
            name=f"{contract['id']}.{data['schema']}",
            facets={"documentation": documentation_job.DocumentationJobFacet(description=doc)},
        ),
        inputs=[InputDataset(namespace=namespace, name=data["topic"], inputFacets=facets)],
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
    """Emit a run event per window summary among ``events`` (``(event id, type, data)``); how many were sent."""
    sent = 0
    for eid, event_type, data in events:
        if event_type != str(EventType.WINDOW_SUMMARY):
            continue
        client.emit(window_run_event(eid, data, namespace=namespace))
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
