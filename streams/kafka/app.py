"""Entry points of the stream worker: the plain runner (the CLI's) and the faust application.

* :func:`run_worker` (used by ``qstreams worker`` and ``python -m streams.kafka.worker``)
  runs :class:`~streams.kafka.worker.BatchWorker` on asyncio with a small aiohttp
  server for ``/metrics`` and ``/health``; SIGINT/SIGTERM stop it cleanly (exit 0),
  configuration errors exit 2.
* :func:`create_app` builds a ``faust.App`` that runs the same BatchWorker as a
  service in the faust lifecycle, with the same two pages on faust's web server:
  ``faust -A streams.kafka.app worker -l info`` (settings from the environment; the
  module-level ``app`` is created on first access, nothing happens at import).
  Records never travel through faust agents: a faust agent consumes ~5k msg/s here,
  the batch path ~90k. The faust app joins its own group (``<app_id>-faust``),
  never the worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any

from streams.errors import ContractError, SettingsError, StreamsError
from streams.observability import CONTENT_TYPE_LATEST, Health, Metrics, configure_logging, quiet_kafka_clients
from streams.settings import Settings

if TYPE_CHECKING:
    import faust
    from aiohttp import web

    from streams.kafka.worker import BatchWorker, Binding

__all__ = ["build_bindings", "create_app", "main", "run_worker", "run_worker_async", "start_web"]

log = logging.getLogger(__name__)
EXIT_OK, EXIT_CONFIG = 0, 2


def build_bindings(settings: Settings) -> list[Binding]:
    """One pipeline binding per schema object of every contract; :class:`ContractError` names file:line."""
    from streams.contracts.loader import load_contracts
    from streams.kafka.pipeline import Binding as PipelineBinding

    contracts = load_contracts(settings.contracts_dir)
    if not contracts:
        raise SettingsError(f"no contracts (*.yaml, *.yml) found in {settings.contracts_dir}")
    return [PipelineBinding(c, s, settings) for c in contracts for s in c.schemas]


def tune_gc() -> None:
    from streams.kafka.worker import tune_gc as tune

    tune()


def make_worker(settings: Settings, metrics: Metrics | None = None, health: Health | None = None) -> BatchWorker:
    from streams.kafka.worker import BatchWorker, default_worker_id

    worker_id = settings.worker_id or default_worker_id()
    return BatchWorker(settings, build_bindings(settings), worker_id=worker_id, metrics=metrics, health=health)


# --- plain runner ------------------------------------------------------------------------------


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


async def run_worker_async(settings: Settings) -> int:
    """Run one worker and its web server until SIGINT/SIGTERM; 0 on a clean stop."""
    metrics, health = Metrics(), Health(max_age=settings.health_max_age_s)
    worker = make_worker(settings, metrics, health)
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


def run_worker(settings: Settings) -> int:
    """Run a worker until SIGINT/SIGTERM: 0 on a clean stop; raises :class:`ContractError`/:class:`SettingsError`.

    Kafka client logs are rate-limited on the root handlers (see :func:`quiet_kafka_clients`).
    """
    quiet_kafka_clients()
    return asyncio.run(run_worker_async(settings))


def main() -> int:
    """``python -m streams.kafka.worker``: settings from the environment; exit 2 on configuration errors."""
    from pydantic import ValidationError

    try:
        settings = Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
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


# --- faust application ---------------------------------------------------------------------------


def _faust_credentials(settings: Settings) -> Any:
    import faust

    from streams.kafka.admin import client_config

    config = client_config(settings, "aiokafka")
    if "sasl_mechanism" in config:
        return faust.SASLCredentials(
            username=config["sasl_plain_username"], password=config["sasl_plain_password"],
            ssl_context=config.get("ssl_context"), mechanism=config["sasl_mechanism"],
        )  # fmt: skip
    if "ssl_context" in config:
        return faust.SSLCredentials(config["ssl_context"])
    return None


def create_app(settings: Settings | None = None) -> faust.App:
    """A faust application running the :class:`BatchWorker` as a service, with ``/metrics`` and ``/health`` pages."""
    import faust
    from mode import Service

    settings = settings or Settings()  # type: ignore[call-arg]
    metrics, health = Metrics(), Health(max_age=settings.health_max_age_s)
    worker = make_worker(settings, metrics, health)
    app = faust.App(
        f"{settings.app_id}-faust",
        broker=[f"kafka://{s}" for s in settings.bootstrap_servers.split(",")],
        broker_credentials=_faust_credentials(settings),
        web_enabled=settings.web_port != 0, web_host=settings.web_host, web_port=settings.web_port or 6066,
        web_bind=settings.web_host, autodiscover=False,
    )  # fmt: skip

    class WorkerService(Service):  # type: ignore[misc]
        """Runs the batch worker for as long as the faust app runs."""

        async def on_start(self) -> None:
            tune_gc()
            self.add_future(self._run())

        async def _run(self) -> None:
            try:
                await worker.run()
            except (ContractError, SettingsError) as exc:
                log.error("worker refused its configuration: %s", exc)
                await self.crash(exc)

        async def on_stop(self) -> None:
            worker.stop()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(worker.stopped.wait(), 60.0)

    app.service(WorkerService)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/health")
    async def health_page(web: Any, request: Any) -> Any:
        status, body = health.report()
        return web.json(body, status=status)

    app.qstreams_worker = worker  # type: ignore[attr-defined]
    return app


@functools.cache
def _default_app() -> faust.App:
    return create_app(Settings())  # type: ignore[call-arg]


def __getattr__(name: str) -> Any:
    """``app`` is created on first access (``faust -A streams.kafka.app``), from the environment's settings."""
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
