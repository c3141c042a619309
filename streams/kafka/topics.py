"""Topic administration for the stream worker (synchronous, kafka-python; the transport runs it in a thread).

:func:`ensure_topics` creates the *output* topics the worker writes (``<topic>.validated`` in
gate mode, ``<topic>.quarantine``, ``<topic>.dlq`` and the events topic) with
``settings.topic_partitions``/``topic_replication``; it is idempotent (an existing topic is
fine). *Source* topics are never created: those missing are returned so the worker can
report them and look again later.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams.errors import BrokerError, SettingsError
from streams.kafka.connection import client_config
from streams.settings import Mode, Settings

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "TopicState",
    "create_topics",
    "ensure_topics",
    "existing_topics",
    "output_topics",
    "topic_max_message_bytes",
]

#: Kafka's default ``message.max.bytes`` (a topic without its own ``max.message.bytes``)
DEFAULT_MAX_MESSAGE_BYTES = 1_048_588

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
    recorder = _Recorder()  # kafka-python logs why a handshake failed, then raises only NoBrokersAvailable
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(recorder)
    try:
        return KafkaAdminClient(**config, **client_config(settings, "kafka-python"))
    except SettingsError:
        raise
    except Exception as exc:  # NoBrokersAvailable, connection refused, DNS, auth failure...
        refused = next((m for m in recorder.messages if _REFUSED.search(m)), None)
        if refused is not None:
            raise BrokerError(f"broker {settings.bootstrap_servers} refused the handshake "
                              f"(AuthenticationFailed): {refused[-200:]}") from exc  # fmt: skip
        raise BrokerError(f"broker {settings.bootstrap_servers} unreachable: {exc!r}") from exc
    finally:
        kafka_log.removeHandler(recorder)


_REFUSED = re.compile(r"Sasl|Authentication|Authorization|CERTIFICATE_VERIFY_FAILED|SSLError", re.IGNORECASE)


class _Recorder(logging.Handler):
    """The kafka-python error lines logged while a client bootstraps (they name the handshake's failure)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < 50:
            self.messages.append(record.getMessage())


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


def create_topics(
    settings: Settings,
    topics: Sequence[str],
    *,
    partitions: int | None = None,
    configs: Mapping[str, str] | None = None,
) -> list[str]:
    """Create those of ``topics`` the cluster lacks (settings' partitions and replication, unless
    ``partitions`` is given; topic ``configs`` such as ``cleanup.policy: compact``); the names created."""
    admin = _admin(settings)
    try:
        wanted = [t for t in dict.fromkeys(topics) if t not in set(admin.list_topics())]
        if not wanted:
            return []
        spec: dict[str, Any] = {
            "num_partitions": partitions or settings.topic_partitions,
            "replication_factor": settings.topic_replication,
        }
        if configs:
            spec["configs"] = dict(configs)
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


def topic_max_message_bytes(settings: Settings, topic: str) -> int:
    """The topic's ``max.message.bytes`` as the broker reports it (its own or the broker's default)."""
    from kafka.admin import ConfigResource, ConfigResourceType  # type: ignore[import-untyped,unused-ignore]

    admin = _admin(settings)
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": None})
        answer = admin.describe_configs([resource], config_filter="all") if _KP3 else admin.describe_configs([resource])
        return _config_value(answer, topic, "max.message.bytes")
    except (SettingsError, BrokerError):
        raise
    except Exception as exc:
        raise BrokerError(
            f"cannot read max.message.bytes of {topic!r} from {settings.bootstrap_servers}: {exc!r}"
        ) from exc
    finally:
        admin.close()


def _kp3() -> bool:
    import kafka  # type: ignore[import-untyped,unused-ignore]

    return int(str(kafka.__version__).split(".")[0]) >= 3


_KP3 = _kp3()


def _config_value(answer: Any, topic: str, key: str) -> int:
    if isinstance(answer, dict):  # kafka-python 3: {"topic": {name: {key: {"value": ...}}}}
        entry = answer.get("topic", {}).get(topic, {}).get(key)
        value = entry.get("value") if isinstance(entry, dict) else entry
    else:  # kafka-python 2: DescribeConfigsResponse objects
        value = None
        for response in answer:
            for resource in response.resources:
                for config in resource[4]:
                    if config[0] == key:
                        value = config[1]
    if value is None:
        return DEFAULT_MAX_MESSAGE_BYTES
    return int(value)
