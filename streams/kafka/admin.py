"""Topics and client configuration for the stream worker.

* :func:`client_config` maps the security settings (SASL, SSL; secrets kept in
  :class:`~pydantic.SecretStr` until this call) to the keyword arguments of
  kafka-python (admin) or aiokafka (consumer, producer), in one place.
* :func:`ensure_topics` creates the *output* topics the worker writes
  (``<topic>.validated`` in gate mode, ``<topic>.quarantine``, ``<topic>.dlq`` and
  the events topic) with ``settings.topic_partitions``/``topic_replication``;
  it is idempotent (an existing topic is fine). *Source* topics are never created:
  those missing are returned so the worker can report them and look again later.

* :func:`producer_config` / :func:`consumer_config`: the worker's aiokafka clients.
* :class:`KafkaSession` owns those clients: it ensures the topics, starts the clients
  (retrying an unreachable broker forever, loudly), subscribes to the source topics
  that exist and periodically probes the broker and looks for the missing ones.

Topic administration is synchronous (kafka-python); the session runs it in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from streams.errors import BrokerError, SettingsError
from streams.observability import Health, Metrics
from streams.settings import Mode, SecurityProtocol, Settings

__all__ = [
    "KafkaSession",
    "TopicState",
    "backoff",
    "client_config",
    "consumer_config",
    "default_worker_id",
    "ensure_topics",
    "existing_topics",
    "output_topics",
    "producer_config",
]

log = logging.getLogger(__name__)

#: CreateTopics error codes that a retry cannot fix: the settings are wrong.
_CONFIG_ERRORS = {
    29: "topic authorization failed (the principal may not create topics)",
    37: "invalid number of partitions",
    38: "invalid replication factor (more replicas than brokers?)",
    40: "invalid topic configuration",
    44: "the broker's create-topic policy refused it",
}
_ALREADY_EXISTS = 36
_SASL = (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)
_SSL = (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)


def client_config(settings: Settings, client: Literal["kafka-python", "aiokafka"]) -> dict[str, Any]:
    """``bootstrap_servers`` and security keyword arguments for a kafka-python or aiokafka client.

    Raises :class:`SettingsError` for an incomplete combination (SASL without a
    mechanism or credentials, a client key without its certificate).
    """
    proto = settings.security_protocol
    out: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers, "security_protocol": str(proto)}
    if proto in _SASL:
        mechanism = (settings.sasl_mechanism or "").upper()
        if mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            raise SettingsError(
                f"{proto} needs sasl_mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got {mechanism!r}"
            )
        if not settings.sasl_username or settings.sasl_password is None:
            raise SettingsError(f"{proto} with {mechanism} needs sasl_username and sasl_password")
        out |= {
            "sasl_mechanism": mechanism,
            "sasl_plain_username": settings.sasl_username,
            "sasl_plain_password": settings.sasl_password.get_secret_value(),
        }
    if proto in _SSL:
        if settings.ssl_keyfile is not None and settings.ssl_certfile is None:
            raise SettingsError("ssl_keyfile is set but ssl_certfile is not")
        cafile = str(settings.ssl_cafile) if settings.ssl_cafile else None
        certfile = str(settings.ssl_certfile) if settings.ssl_certfile else None
        keyfile = str(settings.ssl_keyfile) if settings.ssl_keyfile else None
        password = settings.ssl_key_password.get_secret_value() if settings.ssl_key_password else None
        if client == "aiokafka":
            from aiokafka.helpers import create_ssl_context

            try:
                out["ssl_context"] = create_ssl_context(
                    cafile=cafile, certfile=certfile, keyfile=keyfile, password=password
                )
            except (OSError, ValueError) as exc:
                raise SettingsError(f"cannot build the TLS context: {exc}") from exc
        else:
            out |= {"ssl_cafile": cafile, "ssl_certfile": certfile, "ssl_keyfile": keyfile, "ssl_password": password}
    return out


def default_worker_id() -> str:
    """``<host>-<pid>``: unique, but not stable across restarts (set ``STREAMS_WORKER_ID`` for that)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def producer_config(settings: Settings, worker_id: str, *, transactional: bool | None = None) -> dict[str, Any]:
    """aiokafka producer arguments of a worker: idempotent, ``acks=all``; transactional with ``exactly_once``.

    ``transactional_id`` is ``<app_id>-<worker_id>``: give workers stable ids (``STREAMS_WORKER_ID``, e.g. the
    pod name) so a restarted worker fences its crashed predecessor's open transaction at once.
    """
    out: dict[str, Any] = {
        "client_id": f"{settings.app_id}-{worker_id}", "acks": "all", "enable_idempotence": True,
        "linger_ms": settings.linger_ms, "max_batch_size": settings.producer_batch_bytes,
        "max_request_size": max(4 * 1_048_576, 2 * settings.max_message_bytes),
    }  # fmt: skip
    if settings.exactly_once if transactional is None else transactional:
        out |= {"transactional_id": f"{settings.app_id}-{worker_id}", "transaction_timeout_ms": 30_000}
    return out | client_config(settings, "aiokafka")


def consumer_config(settings: Settings, worker_id: str) -> dict[str, Any]:
    """aiokafka consumer arguments of a worker: group ``app_id``, manual commits, earliest, large fetches.

    ``read_committed`` so that aborted transactional writes to a source topic are never validated.
    """
    return {
        "client_id": f"{settings.app_id}-{worker_id}", "group_id": settings.app_id, "enable_auto_commit": False,
        "auto_offset_reset": "earliest", "isolation_level": "read_committed",
        "max_partition_fetch_bytes": max(8 * 1_048_576, 2 * settings.max_message_bytes),
        "fetch_max_bytes": 64 * 1_048_576,
    } | client_config(settings, "aiokafka")  # fmt: skip


def backoff(settings: Settings, attempt: int, ceiling: float = 30.0) -> float:
    """Seconds before retry ``attempt`` (1-based): ``retry_backoff_ms`` doubled per attempt, at most ``ceiling``."""
    return float(min(settings.retry_backoff_ms / 1000 * 2 ** max(attempt - 1, 0), ceiling))


def output_topics(settings: Settings, sources: Iterable[str]) -> list[str]:
    """Every topic the worker produces to, for the given source topics: outputs plus the events topic."""
    kinds = ("validated", "quarantine", "dlq") if settings.mode is Mode.GATE else ("quarantine", "dlq")
    out = [settings.output_topic(t, k) for t in sources for k in kinds]
    return [*dict.fromkeys([*out, settings.events_topic])]


@dataclass(frozen=True, slots=True)
class TopicState:
    """What :func:`ensure_topics` found and did."""

    sources_present: tuple[str, ...]
    sources_missing: tuple[str, ...]
    created: tuple[str, ...]


def _admin(settings: Settings) -> Any:
    from kafka.admin import KafkaAdminClient  # type: ignore[import-untyped,unused-ignore]

    config = {"client_id": f"{settings.app_id}-admin", "request_timeout_ms": 10_000}
    if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG:  # kafka-python >= 3
        config["bootstrap_timeout_ms"] = 5_000
    try:
        return KafkaAdminClient(**config, **client_config(settings, "kafka-python"))
    except SettingsError:
        raise
    except Exception as exc:  # NoBrokersAvailable, connection refused, DNS, auth failure...
        raise BrokerError(f"broker {settings.bootstrap_servers} unreachable: {exc!r}") from exc


def existing_topics(settings: Settings) -> set[str]:
    """Names of the topics the cluster has; :class:`BrokerError` when it cannot be asked."""
    admin = _admin(settings)
    try:
        return set(admin.list_topics())
    except Exception as exc:
        raise BrokerError(f"broker {settings.bootstrap_servers} unreachable: {exc!r}") from exc
    finally:
        admin.close()


def _check_created(response: Any) -> list[str]:
    """Names of the topics a CreateTopics response created; raises for errors other than "already exists"."""
    entries = response.get("topics", ()) if isinstance(response, dict) else getattr(response, "topic_errors", ())
    created = []
    for entry in entries:
        if isinstance(entry, dict):
            name, code, message = str(entry.get("name")), int(entry.get("error_code", 0)), entry.get("error_message")
        else:  # kafka-python 2: (name, error_code[, error_message]) tuples
            name, code, message = str(entry[0]), int(entry[1]), entry[2] if len(entry) > 2 else None
        if code == 0:
            created.append(name)
        elif code in _CONFIG_ERRORS:
            raise SettingsError(f"cannot create topic {name!r}: {_CONFIG_ERRORS[code]}: {message}")
        elif code != _ALREADY_EXISTS:
            raise BrokerError(f"creating topic {name!r} failed (error {code}): {message}")
    return created


def create_topics(settings: Settings, topics: Sequence[str]) -> list[str]:
    """Create those of ``topics`` the cluster lacks (settings' partitions and replication); the names created."""
    admin = _admin(settings)
    try:
        wanted = [t for t in dict.fromkeys(topics) if t not in set(admin.list_topics())]
        if not wanted:
            return []
        spec = {"num_partitions": settings.topic_partitions, "replication_factor": settings.topic_replication}
        created = _check_created(admin.create_topics({t: dict(spec) for t in wanted}, raise_errors=False))
        if created and hasattr(admin, "wait_for_topics"):
            admin.wait_for_topics(created)
        return created
    except (SettingsError, BrokerError):
        raise
    except Exception as exc:
        raise BrokerError(f"broker {settings.bootstrap_servers} unreachable: {exc!r}") from exc
    finally:
        admin.close()


def ensure_topics(settings: Settings, sources: Sequence[str], *, create: bool | None = None) -> TopicState:
    """Create the missing output topics of the ``sources`` that exist (and the events topic); report the rest.

    Raises :class:`BrokerError` when the cluster cannot be reached (retry later)
    and :class:`SettingsError` when it refuses the topics for a reason a retry
    cannot fix (replication factor, authorization, policy).
    """
    admin = _admin(settings)
    try:
        have = set(admin.list_topics())
        present = tuple(t for t in sources if t in have)
        missing = tuple(t for t in sources if t not in have)
        wanted = [t for t in output_topics(settings, present) if t not in have]
        if not wanted or not (settings.create_topics if create is None else create):
            return TopicState(present, missing, ())
        spec = {"num_partitions": settings.topic_partitions, "replication_factor": settings.topic_replication}
        response = admin.create_topics({t: dict(spec) for t in wanted}, raise_errors=False)
        created = _check_created(response)
        if created and hasattr(admin, "wait_for_topics"):  # kafka-python >= 3: until every partition has a leader
            admin.wait_for_topics(created)
    except (SettingsError, BrokerError):
        raise
    except Exception as exc:
        raise BrokerError(f"broker {settings.bootstrap_servers} unreachable: {exc!r}") from exc
    finally:
        admin.close()
    if created:
        log.info(
            "created topics %s (%d partitions, replication %d)",
            ", ".join(created), settings.topic_partitions, settings.topic_replication,
        )  # fmt: skip
    return TopicState(present, missing, tuple(created))


# --- the Kafka clients of a worker -------------------------------------------------------------------

T = TypeVar("T")


class KafkaSession:
    """The Kafka clients of one worker: output topics ensured, clients started and source topics subscribed.

    An unreachable broker is retried forever with backoff, logged loudly (``broker host:port
    unreachable, retrying in Ns``) and reported on ``/health``; only configuration errors raise.
    Source topics that do not exist are not subscribed (nor created): :meth:`probe` looks again.
    """

    def __init__(self, settings: Settings, worker_id: str, sources: Sequence[str], *, stop: asyncio.Event,
                 health: Health, metrics: Metrics) -> None:  # fmt: skip
        self.settings, self.worker_id, self.sources = settings, worker_id, tuple(sources)
        self.stop, self.health, self.metrics = stop, health, metrics
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.events: AIOKafkaProducer | None = None  # lifecycle events: never transactional
        self.subscribed: tuple[str, ...] = ()
        self.missing: tuple[str, ...] = ()
        self._partitions: dict[str, int] = {}
        self._unreachable = False

    def _down(self, reason: str) -> None:
        for topic in self.sources:
            self.health.fail(topic, reason)
            self.metrics.binding_up.labels(topic).set(0)

    async def retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """``await call()`` until it works; None once ``stop`` is set."""
        attempt = 0
        while not self.stop.is_set():
            try:
                return await call()
            except (BrokerError, KafkaError, OSError) as exc:
                attempt += 1
                delay = backoff(self.settings, attempt)
                log.error("broker %s unreachable, retrying in %.1fs (%s: %s)",
                          self.settings.bootstrap_servers, delay, what, exc)  # fmt: skip
                self._down("broker unreachable")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)
        return None

    async def connect(self, listener: ConsumerRebalanceListener) -> bool:
        """Topics, clients, subscription; False when stopped before connecting."""
        s = self.settings
        state = await self.retrying("creating topics", lambda: asyncio.to_thread(ensure_topics, s, self.sources))
        if state is None:
            return False
        self.producer = AIOKafkaProducer(**producer_config(s, self.worker_id))
        self.consumer = AIOKafkaConsumer(**consumer_config(s, self.worker_id))
        self.events = self.producer
        if s.exactly_once:
            self.events = AIOKafkaProducer(**producer_config(s, self.worker_id, transactional=False))
        clients: list[AIOKafkaProducer | AIOKafkaConsumer] = [*dict.fromkeys((self.producer, self.events))]
        for client in [*clients, self.consumer]:
            if await self.retrying("starting the Kafka clients", functools.partial(_started, client)) is None:
                return False
        for topic in output_topics(s, state.sources_present):
            await self.partition_count(topic)
        self.missing = state.sources_missing
        self.subscribe(state.sources_present, listener)
        return True

    def subscribe(self, topics: Sequence[str], listener: ConsumerRebalanceListener) -> None:
        assert self.consumer is not None
        wanted = tuple(sorted(topics))
        if wanted and wanted != self.subscribed:
            self.consumer.subscribe(list(wanted), listener=listener)
        self.subscribed = wanted
        for topic in wanted:
            self.health.ok(topic)
            self.metrics.binding_up.labels(topic).set(1)
        for topic in self.missing:
            self.health.fail(topic, "source topic missing")
        self.health.polled(wanted)

    async def probe(self, listener: ConsumerRebalanceListener) -> list[str]:
        """Check the broker answers (loud log if not) and subscribe to source topics that appeared; returns those."""
        assert self.consumer is not None
        every = self.settings.topic_check_interval_s
        try:
            cluster_topics = await asyncio.wait_for(self.consumer.topics(), max(every, 5.0))
            appeared = [t for t in self.missing if t in cluster_topics]
            state = await asyncio.to_thread(ensure_topics, self.settings, self.sources) if appeared else None
        except (TimeoutError, KafkaError, BrokerError, OSError) as exc:
            log.error("broker %s unreachable, retrying in %.0fs (%r)", self.settings.bootstrap_servers, every, exc)
            self._unreachable = True
            self._down("broker unreachable")
            return []
        if self._unreachable:
            log.warning("broker %s reachable again", self.settings.bootstrap_servers)
            self._unreachable = False
        if state is not None:
            log.info("source topics now present: %s", ", ".join(appeared))
            self.missing = state.sources_missing
        self.subscribe(state.sources_present if state is not None else self.subscribed, listener)
        return appeared

    async def partition_count(self, topic: str) -> int:
        if topic not in self._partitions:
            assert self.producer is not None
            self._partitions[topic] = len(await self.producer.partitions_for(topic))
        return self._partitions[topic]

    async def close(self) -> None:
        for client in dict.fromkeys((self.consumer, self.events, self.producer)):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()


async def _started(client: AIOKafkaProducer | AIOKafkaConsumer) -> bool:
    await client.start()
    return True
