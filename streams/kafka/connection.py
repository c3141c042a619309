"""The one Kafka connection model: bootstrap servers and security (SASL, SSL) of :class:`Settings` as client arguments.

:func:`client_config` maps the security settings (secrets kept in :class:`~pydantic.SecretStr`
until this call) to the keyword arguments of kafka-python (admin) or aiokafka (consumer,
producer); every client quality-streams builds goes through it: the worker's
(:func:`producer_config`, :func:`consumer_config`), topic admin, ``qstreams produce`` and the
demo (:func:`plain_producer_config`).
"""

from __future__ import annotations

import os
import socket
from typing import Any, Literal

from streams.errors import SettingsError
from streams.kafka.codecs import use_levels
from streams.settings import Compression, SecurityProtocol, Settings

__all__ = [
    "FETCH_MIN_BYTES",
    "TRANSACTIONAL_RETRY_BACKOFF_MS",
    "auth_failure",
    "backoff",
    "client_config",
    "consumer_config",
    "default_worker_id",
    "fetch_wait_ms",
    "max_request_size",
    "plain_producer_config",
    "producer_config",
]

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


#: the retry backoff of an exactly-once worker's transactional producer (aiokafka's default: 100 ms). A transaction's
#: coordinator requests are retried after it: ``TxnOffsetCommit`` is answered ``COORDINATOR_NOT_AVAILABLE`` now and
#: then (1-2 of ~25 transactions per 200k prediction records), and those 100 ms set the p99 of such a run (issue 13;
#: ``docs/delivery.md``). aiokafka itself retries ``CONCURRENT_TRANSACTIONS`` after 20 ms. The events producer
#: (never transactional) keeps the default.
TRANSACTIONAL_RETRY_BACKOFF_MS = 20


def producer_config(settings: Settings, worker_id: str, *, transactional: bool | None = None) -> dict[str, Any]:
    """aiokafka producer arguments of a worker: idempotent, ``acks=all``; transactional with ``exactly_once``.

    ``transactional_id`` is ``<app_id>-<worker_id>``: give workers stable ids (``STREAMS_WORKER_ID``, e.g. the
    pod name) so a restarted worker fences its crashed predecessor's open transaction at once. The codec's level
    (``output_compression_level``) is set for the whole process here (:func:`streams.kafka.codecs.use_levels`).
    """
    use_levels(settings)
    out: dict[str, Any] = {
        "client_id": f"{settings.app_id}-{worker_id}", "acks": "all", "enable_idempotence": True,
        "linger_ms": settings.linger_ms, "max_batch_size": settings.producer_batch_bytes,
        "max_request_size": max_request_size(settings),
        "metadata_max_age_ms": _metadata_age_ms(settings), "compression_type": _codec(settings),
    }  # fmt: skip
    if settings.exactly_once if transactional is None else transactional:
        out |= {"transactional_id": f"{settings.app_id}-{worker_id}", "transaction_timeout_ms": 30_000,
                "retry_backoff_ms": TRANSACTIONAL_RETRY_BACKOFF_MS}  # fmt: skip
    return out | client_config(settings, "aiokafka")


def _codec(settings: Settings) -> str | None:
    """aiokafka's ``compression_type`` of the worker's producers: None for ``none``."""
    return None if settings.output_compression is Compression.NONE else str(settings.output_compression)


def max_request_size(settings: Settings) -> int:
    """The largest produce request a worker's producer sends (and so the largest record it can write)."""
    return max(4 * 1_048_576, 2 * settings.max_message_bytes)


#: ``fetch.min.bytes`` of a worker's consumer (with :func:`fetch_wait_ms`): a fetch of a slow feed is answered when
#: this much arrived or the wait is over, not for every record (a backlog fills it at once)
FETCH_MIN_BYTES = 1_048_576


def fetch_wait_ms(settings: Settings) -> int:
    """How long the broker may hold a worker's fetch for more records (``fetch.max.wait.ms``): a quarter of
    ``batch_max_latency_ms``, at most Kafka's default 500 ms; 0 (not held: ``fetch.min.bytes`` 1) under 4 ms.

    A slow feed's records were fetched as they arrived: at 500 records/s from many producers the consumer handled
    ~140 fetch responses a second, each costing the event loop more than its few records (issue 13). The batch
    fill (:func:`~streams.kafka.filling.fill`) takes the broker's wait off its own, so a record still waits at most
    ``batch_max_latency_ms`` for its batch. A quarter, not more: the fill's own wait then spans a few of the
    broker's answers (at half, a poll often ended just before the second one: twice the polls, each with the
    fixed cost of a poll). An idle worker's consumer fetches every wait (20 a second at 200 ms, Kafka's default
    2), ~1% of a core (``docs/scaling.md`` §5)."""
    return min(500, settings.batch_max_latency_ms // 4)


def consumer_config(settings: Settings, worker_id: str) -> dict[str, Any]:
    """aiokafka consumer arguments of a worker: group ``app_id``, manual commits, earliest, large fetches, held by
    the broker for more records up to :func:`fetch_wait_ms`.

    ``read_committed`` so that aborted transactional writes to a source topic are never validated.
    """
    wait = fetch_wait_ms(settings)
    held = {"fetch_min_bytes": FETCH_MIN_BYTES, "fetch_max_wait_ms": wait} if wait else {}
    return {
        "client_id": f"{settings.app_id}-{worker_id}", "group_id": settings.app_id, "enable_auto_commit": False,
        "auto_offset_reset": "earliest", "isolation_level": "read_committed",
        "max_partition_fetch_bytes": max(8 * 1_048_576, 2 * settings.max_message_bytes),
        "fetch_max_bytes": 64 * 1_048_576, "metadata_max_age_ms": _metadata_age_ms(settings), **held,
    } | client_config(settings, "aiokafka")  # fmt: skip


def _metadata_age_ms(settings: Settings) -> int:
    """Cluster metadata is refreshed every ``topic_check_interval_s`` (aiokafka's default is 5 minutes): new
    source partitions are consumed, and re-partitioned or deleted output topics seen, within that interval."""
    return max(int(settings.topic_check_interval_s * 1000), 1000)


def backoff(settings: Settings, attempt: int, ceiling: float = 30.0) -> float:
    """Seconds before retry ``attempt`` (1-based): ``retry_backoff_ms`` doubled per attempt, at most ``ceiling``."""
    return float(min(settings.retry_backoff_ms / 1000 * 2 ** max(attempt - 1, 0), ceiling))


def plain_producer_config(settings: Settings, client_id: str, **overrides: Any) -> dict[str, Any]:
    """aiokafka producer arguments for tools (``qstreams produce``, the demo): the settings' bootstrap and security."""
    return {"client_id": client_id} | overrides | client_config(settings, "aiokafka")


_AUTH_NAMES = ("Authentication", "Sasl", "Authorization", "UnsupportedSaslMechanism", "SSLCertVerification")


def auth_failure(error: BaseException) -> str | None:
    """``"authentication failed: <cause>"`` when ``error`` (or what caused it) is the cluster refusing us, else None.

    SASL and TLS failures and authorization refusals are not "broker unreachable": retrying does not fix
    them, a person must (credentials, certificates, ACLs). The worker still retries (a rotated secret may
    arrive) but says so, on ``/health`` too.
    """
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        name = type(e).__name__
        if any(n in name for n in _AUTH_NAMES) or "(AuthenticationFailed)" in str(e):
            what = "authorization refused" if "Authorization" in name else "authentication failed"
            return f"{what}: {name}: {e}"[:300]
        e = e.__cause__ or e.__context__
    return None
