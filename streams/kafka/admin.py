"""Topics and client configuration for the stream worker.

* :func:`client_config` maps the security settings (SASL, SSL; secrets kept in
  :class:`~pydantic.SecretStr` until this call) to the keyword arguments of
  kafka-python (admin) or aiokafka (consumer, producer), in one place.
* :func:`ensure_topics` creates the *output* topics the worker writes
  (``<topic>.validated`` in gate mode, ``<topic>.quarantine``, ``<topic>.dlq`` and
  the events topic) with ``settings.topic_partitions``/``topic_replication``;
  it is idempotent (an existing topic is fine). *Source* topics are never created:
  those missing are returned so the worker can report them and look again later.

Everything here is synchronous (kafka-python); the asyncio worker calls it in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from streams.errors import BrokerError, SettingsError
from streams.settings import Mode, SecurityProtocol, Settings

__all__ = ["TopicState", "client_config", "ensure_topics", "existing_topics", "output_topics"]

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
