"""The faust application: the same :class:`~streams.kafka.batches.BatchWorker` as a service in faust's lifecycle.

``faust -A streams.kafka.app worker -l info`` (settings from the environment; the module-level
``app`` is created on first access, nothing happens at import), with ``/metrics`` and
``/health`` on faust's web server. Records never travel through faust agents: a faust agent
consumes ~5k msg/s here, the batch path ~90k. The faust app joins its own group
(``<app_id>-faust``), never the worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
from typing import TYPE_CHECKING, Any, cast

from streams.errors import ContractError, SettingsError
from streams.kafka.worker import Extension, make_worker, tune_gc
from streams.observability import CONTENT_TYPE_LATEST, Health, Metrics
from streams.settings import Settings, load_settings

if TYPE_CHECKING:
    import faust

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _faust_credentials(settings: Settings) -> Any:
    import faust

    from streams.kafka.connection import client_config

    config = client_config(settings, "aiokafka")
    if "sasl_mechanism" in config:
        return faust.SASLCredentials(
            username=config["sasl_plain_username"], password=config["sasl_plain_password"],
            ssl_context=config.get("ssl_context"), mechanism=config["sasl_mechanism"],
        )  # fmt: skip
    if "ssl_context" in config:
        return faust.SSLCredentials(config["ssl_context"])
    return None


#: The observers the default app's worker gets, resolved by module path on first use (a higher layer assembles
#: them, as ``qstreams worker`` does): stream time (window verdicts, uniqueness) and the quarantine control of
#: ``quarantine-stream`` policies.
DEFAULT_EXTENSION = "streams.cli.policies:worker_observers"


def _extension(path: str) -> Extension:
    module, _, name = path.partition(":")
    return cast("Extension", getattr(importlib.import_module(module), name))


def create_app(settings: Settings | None = None, *, extend: Extension | None = None) -> faust.App:
    """A faust application running the :class:`BatchWorker` as a service, with ``/metrics`` and ``/health`` pages;
    ``extend`` adds observers to the worker (see :data:`streams.kafka.worker.Extension`)."""
    import faust
    from mode import Service

    settings = settings or load_settings()
    metrics, health = Metrics(), Health(max_age=settings.health_max_age_s)
    worker = make_worker(settings, metrics, health, extend=extend)
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
    return create_app(load_settings(), extend=_extension(DEFAULT_EXTENSION))


def __getattr__(name: str) -> Any:
    """``app`` is created on first access (``faust -A streams.kafka.app``), from the environment's settings."""
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
