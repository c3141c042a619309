"""Entry points of the stream worker: the asyncio runner (``qstreams worker``, ``python -m streams.kafka.worker``).

:func:`run_worker` runs :class:`~streams.kafka.batches.BatchWorker` on asyncio with a small
aiohttp server for ``/metrics`` and ``/health``; SIGINT/SIGTERM stop it cleanly (exit 0),
configuration errors exit 2. The faust application is :mod:`streams.kafka.app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from streams.errors import ContractError, SettingsError, StreamsError
from streams.kafka.batches import BatchWorker, tune_gc
from streams.kafka.connection import default_worker_id
from streams.kafka.observers import WorkerObserver
from streams.observability import CONTENT_TYPE_LATEST, Health, Metrics, configure_logging, quiet_kafka_clients
from streams.settings import Settings, load_settings

if TYPE_CHECKING:
    from aiohttp import web

    from streams.pipeline.binding import Binding

__all__ = [
    "BatchWorker",
    "build_bindings",
    "default_worker_id",
    "main",
    "make_worker",
    "run_worker",
    "run_worker_async",
    "start_web",
    "tune_gc",
]

log = logging.getLogger(__name__)
EXIT_OK, EXIT_CONFIG = 0, 2


def build_bindings(settings: Settings) -> list[Binding]:
    """One pipeline binding per schema object of every contract; :class:`ContractError` names file:line."""
    from streams.contracts.loader import load_contracts
    from streams.pipeline.binding import Binding as PipelineBinding
    from streams.pipeline.loops import own_topics

    contracts = load_contracts(settings.contracts_dir)
    if not contracts:
        raise SettingsError(f"no contracts (*.yaml, *.yml) found in {settings.contracts_dir}")
    loops = [f for c in contracts for f in own_topics(c, settings)]
    if loops:  # lint's rule, with the worker's own settings: refused before any client starts
        raise ContractError("; ".join(map(str, loops)))
    return [PipelineBinding(c, s, settings) for c in contracts for s in c.schemas]


#: Builds further observers of a worker from its settings, bindings, id and metrics (e.g. stream time,
#: assembled by a higher layer: ``streams.cli.stream_time.kafka_observers``).
Extension = Callable[[Settings, Sequence["Binding"], str, Metrics], Sequence[WorkerObserver]]


def make_worker(
    settings: Settings, metrics: Metrics | None = None, health: Health | None = None, *, extend: Extension | None = None
) -> BatchWorker:
    worker_id = settings.worker_id or default_worker_id()
    bindings = build_bindings(settings)
    metrics = metrics if metrics is not None else Metrics()
    observers = extend(settings, bindings, worker_id, metrics) if extend is not None else ()
    return BatchWorker(settings, bindings, worker_id=worker_id, metrics=metrics, health=health, observers=observers)


async def start_web(settings: Settings, metrics: Metrics, health: Health) -> web.AppRunner | None:
    """Serve ``/metrics`` and ``/health`` on ``settings.web_host:web_port`` (none when the port is 0)."""
    if settings.web_port == 0:
        return None
    from aiohttp import web

    async def metrics_view(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health_view(_request: web.Request) -> web.Response:
        status, body = health.report()
        return web.json_response(body, status=status)

    application = web.Application()
    application.router.add_get("/metrics", metrics_view)
    application.router.add_get("/health", health_view)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.web_host, settings.web_port).start()
    except OSError as exc:
        await runner.cleanup()
        raise SettingsError(f"cannot serve /metrics on {settings.web_host}:{settings.web_port}: {exc}") from exc
    log.info("serving /metrics and /health on http://%s:%d", settings.web_host, settings.web_port)
    return runner


async def run_worker_async(settings: Settings, extend: Extension | None = None) -> int:
    """Run one worker and its web server until SIGINT/SIGTERM; 0 on a clean stop."""
    metrics, health = Metrics(), Health(max_age=settings.health_max_age_s)
    worker = make_worker(settings, metrics, health, extend=extend)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or not Unix
            loop.add_signal_handler(sig, worker.stop)
    runner = await start_web(settings, metrics, health)
    tune_gc()
    try:
        await worker.run()
    finally:
        if runner is not None:
            await runner.cleanup()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    log.info("worker %s stopped", worker.worker_id)
    return EXIT_OK


def run_worker(settings: Settings, extend: Extension | None = None) -> int:
    """Run a worker until SIGINT/SIGTERM: 0 on a clean stop; raises :class:`ContractError`/:class:`SettingsError`.

    Kafka client logs are rate-limited on the root handlers (see :func:`quiet_kafka_clients`).
    """
    quiet_kafka_clients()
    return asyncio.run(run_worker_async(settings, extend))


def main() -> int:
    """``python -m streams.kafka.worker``: settings from the environment; exit 2 on configuration errors."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)
    try:
        return run_worker(settings)
    except ContractError as exc:
        print(f"error: contract refused: {exc}", file=sys.stderr)
    except (SettingsError, StreamsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return EXIT_CONFIG


if __name__ == "__main__":
    raise SystemExit(main())
