"""``qstreams performance run --contract FILE``: join a prediction contract's labels to its predictions and
publish ``io.qualitystreams.model.performance.v1`` per window of prediction time and model version.

Connection, topics, app id and the stream-time defaults come from :class:`streams.settings.Settings`
(``STREAMS_*``); the labels binding from the contract (``qstreams.prediction.labels``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from streams.errors import ContractError, SettingsError, StreamsError

__all__ = ["register"]

log = logging.getLogger("streams.cli.performance")

performance_app = typer.Typer(help="Realized model performance: labels joined to predictions.", no_args_is_help=True,
                              rich_markup_mode=None)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``performance`` to the ``qstreams`` command line."""
    app.add_typer(performance_app, name="performance")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@performance_app.command("run")
def performance_run(
    contract: Annotated[Path, typer.Option("--contract", "-c", metavar="FILE", help="The prediction contract.")],
    schema: Annotated[str | None, typer.Option(metavar="NAME", help="Its schema object binding labels.")] = None,
    broker: Annotated[str | None, typer.Option("--broker", metavar="HOST:PORT",
                                               help="Bootstrap servers [env KAFKA_BOOTSTRAP_SERVERS].")] = None,
    joiner_id: Annotated[str | None, typer.Option(metavar="ID", help="Names the consumer group, state keys and "
                                                  "transactional ids; processes sharing it split the partitions "
                                                  "(default: from the contract id and schema object).")] = None,
    state_topic: Annotated[str | None, typer.Option(metavar="TOPIC",
                                                    help="Compacted state topic [<app_id>.performance-state].")] = None,
    metrics_port: Annotated[int, typer.Option(metavar="PORT", help="/metrics port (0: none).")] = 0,
) -> None:  # fmt: skip
    """Consume the predictions and labels topics, join them by prediction id within the horizon, and publish one
    model.performance event per final window and model version, exactly once across restarts (state in a
    compacted topic, outputs and state in one transaction). Both topics must be keyed by prediction id with the same
    partition count; several processes with the same joiner id share the partitions (a consumer group) and one
    event per window and model version still comes out."""
    from streams.contracts.loader import load_contract
    from streams.performance.binding import join_spec
    from streams.performance.runner import run_joiner
    from streams.performance.runner import state_topic as default_state
    from streams.performance.telemetry import JoinCounters
    from streams.settings import load_settings

    try:
        settings = load_settings(**({"bootstrap_servers": broker} if broker else {}))
        spec = join_spec(load_contract(contract), settings, schema)
    except (SettingsError, ContractError) as exc:
        raise _fail(str(exc)) from None
    digest = hashlib.sha256(f"{spec.contract.id}|{spec.schema}".encode()).hexdigest()[:12]
    jid = joiner_id or f"performance-{digest}"
    state = state_topic or default_state(settings)
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")  # fmt: skip
    from streams.observability import quiet_kafka_clients

    quiet_kafka_clients()
    counters = JoinCounters()
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=settings.web_host, registry=counters.registry)
    log.info("performance joiner %s: %s schema %s, predictions %s, labels %s, window %d ms, horizon %d ms", jid,
             spec.contract.ref, spec.schema, spec.predictions_topic, spec.labels.topic, spec.window_ms,
             spec.horizon_ms)  # fmt: skip

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await run_joiner(settings, spec, joiner_id=jid, state=state, stop=stop, counters=counters,
                         on_ready=lambda j: log.info("performance joiner %s ready", jid))  # fmt: skip

    try:
        asyncio.run(go())
    except StreamsError as exc:
        raise _fail(str(exc)) from None
