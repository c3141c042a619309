"""``qstreams policies run``, ``qstreams incidents resolve ID``, ``qstreams events tail``, and the worker's
quarantine control (:func:`worker_observers`).

Connection, topics and app id come from :class:`streams.settings.Settings` (``STREAMS_*``), the
agent's own settings (webhooks, its topics) from :class:`streams.policies.config.PolicySettings`
(``STREAMS_POLICY_*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from streams.errors import ContractError, SettingsError, StreamsError

if TYPE_CHECKING:
    from streams.kafka.observers import WorkerObserver
    from streams.observability import Metrics
    from streams.pipeline.binding import Binding
    from streams.policies.tail import TailFilter, TailView
    from streams.settings import Settings

__all__ = ["register", "worker_observers"]

log = logging.getLogger("streams.cli.policies")

policies_app = typer.Typer(help="Response policies: run the policy agent.", no_args_is_help=True,
                           rich_markup_mode=None)  # fmt: skip
incidents_app = typer.Typer(help="Incidents opened by response policies.", no_args_is_help=True, rich_markup_mode=None)
events_app = typer.Typer(help="The quality-event topic.", no_args_is_help=True, rich_markup_mode=None)

Broker = Annotated[
    str | None, typer.Option("--broker", metavar="HOST:PORT", help="Bootstrap servers [env KAFKA_BOOTSTRAP_SERVERS].")
]


def register(app: typer.Typer) -> None:
    """Add ``policies``, ``incidents`` and ``events`` to the ``qstreams`` command line."""
    app.add_typer(policies_app, name="policies")
    app.add_typer(incidents_app, name="incidents")
    app.add_typer(events_app, name="events")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings(broker: str | None) -> Settings:
    from streams.settings import load_settings

    try:
        return load_settings(**({"bootstrap_servers": broker} if broker else {}))
    except SettingsError as exc:
        raise _fail(f"invalid settings: {exc}") from None


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


@policies_app.command("run")
def policies_run(
    contract: Annotated[list[Path], typer.Option("--contract", "-c", metavar="FILE", help="Contracts (repeat).")],
    broker: Broker = None,
    agent_id: Annotated[str | None, typer.Option(metavar="ID", help="[env STREAMS_POLICY_AGENT_ID]")] = None,
    metrics_port: Annotated[int | None, typer.Option(metavar="PORT", help="/metrics port (0: none).")] = None,
) -> None:
    """Consume the quality-event topic, decide incidents, emit policy events and act (webhooks, commands,
    quarantine). Decisions are exactly once per incident across replays and restarts (state in a compacted topic)."""
    from streams.contracts.loader import load_contract
    from streams.policies.agent import distinct_contracts
    from streams.policies.config import load_policy_settings
    from streams.policies.runner import run_agent
    from streams.policies.spec import parse_policies
    from streams.policies.telemetry import PolicyMetrics

    settings = _settings(broker)
    overrides: dict[str, object] = {}
    if agent_id:
        overrides["agent_id"] = agent_id
    if metrics_port is not None:
        overrides["metrics_port"] = metrics_port
    try:
        ps = load_policy_settings(**overrides)
        contracts = [load_contract(p) for p in contract]
        distinct_contracts(contracts)
        n = sum(len(parse_policies(c)) for c in contracts)
    except (SettingsError, ContractError) as exc:
        raise _fail(str(exc)) from None
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")  # fmt: skip
    from streams.observability import quiet_kafka_clients

    quiet_kafka_clients()
    metrics = PolicyMetrics()
    if ps.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(ps.metrics_port, addr=settings.web_host, registry=metrics.registry)
    hooks = ", ".join(f"{w.name} ({w.kind})" for w in ps.webhooks) or "none"
    log.info("policy agent %s: %d polic(ies) of %d contract(s); webhooks: %s", ps.agent_id, n, len(contracts), hooks)

    async def go() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        await run_agent(settings, ps, contracts, stop=stop, metrics=metrics,
                        on_ready=lambda agent: log.info("policy agent %s ready", ps.agent_id))  # fmt: skip

    try:
        asyncio.run(go())
    except StreamsError as exc:
        raise _fail(str(exc)) from None


@incidents_app.command("resolve")
def incidents_resolve(
    incident: Annotated[str, typer.Argument(help="The incident id (32 hex digits, from the policy.triggered event).")],
    by: Annotated[str, typer.Option(metavar="NAME", help="Who resolves it (recorded in policy.resolved).")] = "cli",
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Why.")] = "resolved by hand",
    broker: Broker = None,
) -> None:
    """Publish a resolve-incident request on the command topic; the policy agent resolves the incident (once),
    emits policy.resolved (how: manual) and releases a quarantine it engaged."""
    import re

    from streams.events.actions import policy_command
    from streams.events.codec import to_kafka
    from streams.kafka.connection import plain_producer_config
    from streams.policies.config import load_policy_settings

    if not re.fullmatch(r"[0-9a-f]{32}", incident):
        raise _fail(f"{incident!r} is not an incident id (32 lowercase hex digits)")
    settings = _settings(broker)
    try:
        ps = load_policy_settings()
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    event = policy_command("resolve-incident", incident_id=incident, time=datetime.now(UTC), reason=reason,
                           requested_by=by)  # fmt: skip
    key, value, headers = to_kafka(event)

    async def send() -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(**plain_producer_config(settings, "qstreams-incidents", acks="all"))
        await producer.start()
        try:
            await producer.send_and_wait(ps.command_topic, value=value, key=key, headers=headers)
        finally:
            await producer.stop()

    try:
        asyncio.run(asyncio.wait_for(send(), 30))
    except Exception as exc:
        raise _fail(f"could not publish the request to {ps.command_topic}: {type(exc).__name__}: {exc}", 1) from None
    typer.echo(f"requested resolution of incident {incident} on {ps.command_topic}")


@events_app.command("tail")
def events_tail(
    contract: Annotated[str | None, typer.Option(metavar="ID", help="Only this contract's events.")] = None,
    type_: Annotated[str | None, typer.Option("--type", metavar="T", help="Only this type (window.summary).")] = None,
    severity: Annotated[
        str | None, typer.Option(metavar="S", help="At least this severity: ok, info, warning, error.")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="One JSON line per event (for piping).")] = False,
    from_beginning: Annotated[bool, typer.Option(help="Replay the topic from its beginning.")] = False,
    max_events: Annotated[int, typer.Option(metavar="N", help="Stop after N matching events (0: never).")] = 0,
    duration: Annotated[float, typer.Option(metavar="SECONDS", help="Stop after this long (0: never).")] = 0.0,
    broker: Broker = None,
) -> None:
    """A live view of the quality-event topic: rates per contract, window verdicts, top failing rules, open
    incidents with owners; --json prints the events instead."""
    from streams.events.types import EventSeverity
    from streams.policies.tail import TailFilter, TailView

    if severity is not None and severity not in set(EventSeverity):
        raise _fail(f"unknown severity {severity!r}; one of ok, info, warning, error")
    settings = _settings(broker)
    flt, view = TailFilter(contract, type_, severity), TailView()

    async def go() -> None:
        from aiokafka import TopicPartition

        from streams.policies.runner import partitions_of, reader_consumer

        stop = asyncio.Event()
        _stop_on_signals(stop)
        consumer = reader_consumer(settings, "qstreams-events-tail")
        await consumer.start()
        live: Any = None
        try:
            parts = await partitions_of(consumer, settings.events_topic)
            if not parts:
                raise _fail(f"the quality-event topic {settings.events_topic} does not exist", 1)
            tps = [TopicPartition(settings.events_topic, p) for p in parts]
            consumer.assign(tps)
            await (consumer.seek_to_beginning(*tps) if from_beginning else consumer.seek_to_end(*tps))
            if not json_:
                from rich.live import Live

                live = Live(view.render(), refresh_per_second=2)
                live.start()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + duration if duration else None
            shown = 0
            while not stop.is_set() and (deadline is None or loop.time() < deadline):
                for records in (await consumer.getmany(timeout_ms=500, max_records=1000)).values():
                    for r in records:
                        if not tail_record(r, flt, view, json_):
                            continue
                        shown += 1
                        if max_events and shown >= max_events:
                            stop.set()
                            break
                if live is not None:
                    live.update(view.render())
        finally:
            if live is not None:
                live.stop()
            await consumer.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())


def tail_record(record: Any, flt: TailFilter, view: TailView, json_: bool) -> bool:
    """Show one record of the quality-event topic (``--json``: print its line; else fold it into ``view``).

    False when it is skipped: not a quality event, filtered out, or data the view cannot read (another
    producer's, a garbled one: logged with its offset). The live view never stops on a record.
    """
    from streams.events.codec import from_kafka
    from streams.policies.tail import json_line

    line = None
    try:
        event = from_kafka(record.key, record.value, record.headers)
        if not flt.matches(event):
            return False
        if json_:
            line = json_line(event)
        else:
            view.add(event)
    except Exception as exc:  # data, never a crash of the tail
        log.warning("skipping offset %d: not a quality event this view can read (%s: %s)", record.offset,
                    type(exc).__name__, str(exc)[:300])  # fmt: skip
        return False
    if line is not None:
        typer.echo(line)
    return True


def worker_observers(
    settings: Settings, bindings: Sequence[Binding], worker_id: str, metrics: Metrics | None = None
) -> list[WorkerObserver]:
    """The worker's observers: stream time, then the quarantine control of ``quarantine-stream`` policies."""
    from streams.cli.stream_time import kafka_observers
    from streams.kafka.topics import create_topics
    from streams.policies.config import load_policy_settings
    from streams.policies.control import install_control
    from streams.policies.runner import COMPACTED, reader_consumer

    observers = kafka_observers(settings, bindings, worker_id, metrics)
    ps = load_policy_settings()

    def factory() -> Any:
        return reader_consumer(settings, f"{settings.app_id}-{worker_id}-control")

    async def prepare() -> None:  # the control topic only: the agent creates the rest
        if settings.create_topics:
            await asyncio.to_thread(create_topics, settings, [ps.control_topic], partitions=1, configs=COMPACTED)

    registry = metrics.registry if metrics is not None else None
    control = install_control(
        bindings, factory, ps.control_topic, prepare=prepare, registry=registry, settings=settings
    )
    return [*observers, control]
