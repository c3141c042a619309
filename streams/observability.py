"""Metrics, health and structured logs of a stream worker.

Metrics live in a dedicated :class:`prometheus_client.CollectorRegistry` (one per
:class:`Metrics`, so tests and several workers in one process never collide) and
follow Prometheus conventions: base units (seconds, records), ``_total`` counters,
bounded label values (contract ids, topics, rule names and partitions; never a
record id or a value)::

    qstreams_records_total{contract,topic,outcome}          outcome: valid | quarantined | dead_lettered
    qstreams_rule_failures_total{contract,rule,severity}    failing rows per rule
    qstreams_decode_seconds{topic}                          histogram, per batch
    qstreams_validation_seconds{topic}                      histogram, per batch
    qstreams_batch_records{topic}                           histogram: messages per batch
    qstreams_commit_latency_seconds{topic}                  histogram: getmany return -> offsets committed
    qstreams_consumer_lag{topic,partition}                  gauge: high watermark - next offset
    qstreams_contract_info{contract,version,sha256,topic}   gauge, always 1
    qstreams_binding_up{topic}                              gauge: 1 consuming, 0 failing or stopped
    qstreams_batch_failures_total{topic,stage}              stage: process | produce | commit
    qstreams_dead_lettered_batches_total{topic}             batches given up after retries (internal.*)

:class:`Health` answers ``/health``: every binding must have polled (consumed, or
found nothing while polling) within ``max_age`` seconds, and none may be marked down
(source topic missing, batch failing, broker unreachable). Observers may add the state
of other parts (``components``, e.g. ``policy_control``): shown, not judged.

:class:`Lifecycle` logs and emits the worker's ``worker.lifecycle`` CloudEvents.
:func:`log_extra` gives the ``extra=`` of a log line about a record position;
:func:`configure_logging` prints it as ``[topic=... partition=... offset=...]`` or as
JSON lines, and rate-limits the Kafka clients' reconnect noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from streams.contracts.model import Contract
    from streams.settings import Settings

log = logging.getLogger("streams.kafka.worker")

__all__ = [
    "CONTENT_TYPE_LATEST",
    "Health",
    "JsonFormatter",
    "Lifecycle",
    "Metrics",
    "RateLimitFilter",
    "configure_logging",
    "log_extra",
    "quiet_kafka_clients",
]

_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_RECORDS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000)
OUTCOMES = ("valid", "quarantined", "dead_lettered")


class Metrics:
    """The worker's Prometheus metrics, registered in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.records = Counter(
            "qstreams_records", "Records judged, by outcome.", ["contract", "topic", "outcome"], registry=r
        )
        self.rule_failures = Counter(
            "qstreams_rule_failures", "Failing rows per rule.", ["contract", "rule", "severity"], registry=r
        )
        self.rule_errors = Counter(
            "qstreams_rule_errors",
            "Batches on which a rule could not be evaluated (its error verdict; rows failed closed by default).",
            ["contract", "rule"],
            registry=r,
        )
        self.decode_seconds = Histogram(
            "qstreams_decode_seconds", "Time to decode one batch.", ["topic"], buckets=_SECONDS, registry=r
        )
        self.validation_seconds = Histogram(
            "qstreams_validation_seconds", "Time to validate one batch.", ["topic"], buckets=_SECONDS, registry=r
        )
        self.batch_records = Histogram(
            "qstreams_batch_records", "Messages per batch.", ["topic"], buckets=_RECORDS, registry=r
        )
        self.commit_latency = Histogram(
            "qstreams_commit_latency_seconds",
            "From getmany returning a batch to its offsets being committed (all outputs acknowledged).",
            ["topic"],
            buckets=_SECONDS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "qstreams_consumer_lag", "High watermark minus next offset to consume.", ["topic", "partition"], registry=r
        )
        self.contract_info = Gauge(
            "qstreams_contract_info", "Contracts enforced (value 1).", ["contract", "version", "sha256", "topic"],
            registry=r,
        )  # fmt: skip
        self.binding_up = Gauge("qstreams_binding_up", "1 when the binding consumes, else 0.", ["topic"], registry=r)
        self.batch_failures = Counter(
            "qstreams_batch_failures", "Batches that failed a stage and were retried.", ["topic", "stage"], registry=r
        )
        self.dead_lettered_batches = Counter(
            "qstreams_dead_lettered_batches", "Batches dead-lettered as internal.* after retries.", ["topic"],
            registry=r,
        )  # fmt: skip

    # -- recording -------------------------------------------------------------------------

    def bind(self, contract_id: str, version: str, sha256: str, topic: str) -> None:
        """Declare a binding: its contract info and an initial ``binding_up`` of 0."""
        self.contract_info.labels(contract_id, version, sha256, topic).set(1)
        self.binding_up.labels(topic).set(0)
        for outcome in OUTCOMES:
            self.records.labels(contract_id, topic, outcome)

    def observe_batch(
        self,
        *,
        contract_id: str,
        topic: str,
        messages: int,
        counts: Mapping[str, int],
        rule_failures: Mapping[str, int],
        severities: Mapping[str, str],
        decode_seconds: float,
        validate_seconds: float,
        rule_errors: Iterable[str] = (),
    ) -> None:
        """Record one processed batch (``severities`` maps rule name to severity; ``rule_errors``
        names the rules that could not be evaluated on it)."""
        for rule in rule_errors:
            self.rule_errors.labels(contract_id, rule).inc()
        for outcome in OUTCOMES:
            n = int(counts.get(outcome, 0))
            if n:
                self.records.labels(contract_id, topic, outcome).inc(n)
        for rule, n in rule_failures.items():
            if n:
                self.rule_failures.labels(contract_id, rule, severities.get(rule, "error")).inc(n)
        self.batch_records.labels(topic).observe(messages)
        self.decode_seconds.labels(topic).observe(max(decode_seconds, 0.0))
        self.validation_seconds.labels(topic).observe(max(validate_seconds, 0.0))

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.consumer_lag.labels(topic, str(partition)).set(max(lag, 0))

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop the lag series of a partition this worker no longer owns."""
        with contextlib.suppress(KeyError):
            self.consumer_lag.remove(topic, str(partition))

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)


@dataclass
class Health:
    """When each binding last polled, and why a binding is down."""

    max_age: float = 30.0
    last_poll: dict[str, float] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)
    #: the state of a worker's other parts (e.g. ``policy_control``), shown in the body; it does not fail the check
    components: dict[str, dict[str, Any]] = field(default_factory=dict)

    def register(self, topics: Iterable[str]) -> None:
        for topic in topics:
            self.down.setdefault(topic, "not started")

    def polled(self, topics: Iterable[str], now: float | None = None) -> None:
        stamp = time.monotonic() if now is None else now
        for topic in topics:
            self.last_poll[topic] = stamp

    def fail(self, topic: str, reason: str) -> None:
        self.down[topic] = reason

    def ok(self, topic: str) -> None:
        self.down.pop(topic, None)

    def problems(self, now: float | None = None) -> dict[str, str]:
        """Topic -> reason for every binding that is down or has not polled within ``max_age``."""
        stamp = time.monotonic() if now is None else now
        out = dict(self.down)
        for topic, last in self.last_poll.items():
            if topic not in out and stamp - last > self.max_age:
                out[topic] = f"no poll for {stamp - last:.0f} s"
        return out

    def report(self, now: float | None = None) -> tuple[int, dict[str, Any]]:
        """``(http_status, body)`` for ``/health``: 200 when no binding has a problem, else 503."""
        problems = self.problems(now)
        topics = sorted(set(self.last_poll) | set(self.down))
        body: dict[str, Any] = {"status": "ok" if not problems else "unavailable", "bindings": topics,
                                "problems": problems}  # fmt: skip
        if self.components:
            body["components"] = {name: dict(detail) for name, detail in self.components.items()}
        return (200 if not problems else 503), body


class Lifecycle:
    """Logs and emits the ``worker.lifecycle`` events of one worker (started, stopped, partitions, failures).

    ``send`` is the producer's ``send`` coroutine (None until connected: events are then only logged).
    Emitting never raises: a lost lifecycle event must not stop the worker.
    """

    def __init__(self, settings: Settings, worker_id: str, contracts: Mapping[str, Contract]) -> None:
        self.settings, self.worker_id, self.contracts = settings, worker_id, dict(contracts)
        self.started_at = datetime.now(UTC)
        self.generation = 0
        self.send: Any = None

    async def emit(
        self,
        phase: str,
        *,
        topics: Iterable[str] | None = None,
        partitions: Sequence[tuple[str, int]] | None = None,
        reason: str | None = None,
        wait: bool = False,
    ) -> None:
        """One event naming the contracts of ``topics`` (or of the ``partitions``' topics, or of every binding)."""
        from streams.events.builders import lifecycle
        from streams.events.codec import to_kafka

        parts = sorted(partitions or ())
        wanted = set(topics) if topics is not None else {t for t, _ in parts} if partitions is not None else None
        chosen = {c.ref: c for t, c in self.contracts.items() if wanted is None or t in wanted}
        shown = ", ".join(f"{t}[{p}]" for t, p in parts)
        log.info("lifecycle %s %s%s", phase, shown, f" ({reason})" if reason else "")
        if self.send is None:
            return
        try:
            event = lifecycle(
                phase, worker_id=self.worker_id, app_id=self.settings.app_id, mode=str(self.settings.mode),
                contracts=list(chosen.values()), partitions=parts, reason=reason, started_at=self.started_at,
                generation=self.generation if partitions is not None else None,
            )  # fmt: skip
            key, value, headers = to_kafka(event)
            future = await self.send(self.settings.events_topic, value, key=key, headers=headers)
            if wait:
                await asyncio.wait_for(future, 10.0)
        except Exception as exc:
            log.warning("could not emit the %s lifecycle event: %r", phase, exc)


# --- logging ------------------------------------------------------------------------------

_FIELDS = ("topic", "partition", "offset", "worker_id", "contract")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {"message", "asctime"}


def log_extra(
    topic: str | None = None, partition: int | None = None, offset: int | None = None, **more: Any
) -> dict[str, Any]:
    """``extra=`` for a log call about a record position: ``log.error("...", extra=log_extra(t, p, o))``."""
    out: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset}
    out.update(more)
    return {k: v for k, v in out.items() if v is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class _KeyValueFormatter(logging.Formatter):
    """The plain format plus `` topic=... partition=... offset=...`` when a record carries them."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = " ".join(f"{k}={getattr(record, k)}" for k in _FIELDS if getattr(record, k, None) is not None)
        if not extra:
            return text
        head, sep, tail = text.partition("\n")
        return f"{head} [{extra}]{sep}{tail}"


class RateLimitFilter(logging.Filter):
    """Let one record per (logger, message template) through every ``every`` seconds for the Kafka clients.

    aiokafka logs every failed reconnect (ten lines a second while a broker is down);
    the worker's own ``broker ... unreachable, retrying in Ns`` lines carry the news.
    """

    def __init__(self, every: float = 30.0, prefixes: tuple[str, ...] = ("aiokafka", "kafka.")) -> None:
        super().__init__()
        self.every, self.prefixes = every, prefixes
        self._last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key, now = (record.name, record.msg), time.monotonic()
        if now - self._last.get(key, -self.every) < self.every:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[key] = now
        return True


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    """Root logging to stderr: plain ``time level logger message [k=v]`` lines, or JSON lines.

    Kafka client logs are limited to WARNING and rate-limited by :class:`RateLimitFilter`.
    """
    handler = logging.StreamHandler()
    fmt = "%(asctime)s %(levelname)s %(name)s %(message)s"
    handler.setFormatter(JsonFormatter() if json_lines else _KeyValueFormatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    quiet_kafka_clients()


def quiet_kafka_clients() -> None:
    """Kafka client loggers at WARNING at least, and a :class:`RateLimitFilter` on every root handler (once)."""
    root = logging.getLogger()
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(max(root.getEffectiveLevel(), logging.WARNING))
    for handler in root.handlers:
        if not any(isinstance(f, RateLimitFilter) for f in handler.filters):
            handler.addFilter(RateLimitFilter())
