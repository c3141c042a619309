"""One frozen settings object for workers, the CLI and the demo.

Every field can be set from the environment with the ``STREAMS_`` prefix
(``STREAMS_MODE=monitor``, ``STREAMS_BATCH_MAX_RECORDS=2000``) or from a ``.env``
file; ``KAFKA_BOOTSTRAP_SERVERS`` is honoured too, as the conventional name.
Credentials are :class:`~pydantic.SecretStr` and never printed.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.errors import SettingsError

__all__ = [
    "COMPRESSION_LEVELS",
    "Compression",
    "Mode",
    "SecurityProtocol",
    "Settings",
    "load_settings",
    "normalize_bootstrap",
]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9_+.-]*://")


def normalize_bootstrap(value: str) -> str:
    """``host:port[,host:port...]`` from any form a broker is given in; ``ValueError`` naming the bad entry.

    Accepted: comma or semicolon lists, blanks, and a URL scheme per entry (faust's ``kafka://host:port``,
    ``PLAINTEXT://``, ``SASL_SSL://``...), with or without a trailing ``/``. A port is required.
    """
    servers = []
    for entry in re.split(r"[,;]", value):
        server = _SCHEME.sub("", entry.strip()).rstrip("/")
        if not server:
            continue
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit() or "/" in server:
            raise ValueError(f"bootstrap servers must be host:port[,host:port...] (kafka:// allowed), got {entry!r}")
        servers.append(server)
    if not servers:
        raise ValueError(f"bootstrap servers must be host:port[,host:port...], got {value!r}")
    return ",".join(servers)


class Mode(enum.StrEnum):
    GATE = "gate"  # forward valid records to <topic>.validated
    MONITOR = "monitor"  # observe only: quarantine, DLQ and events, no forwarding


class OnRuleError(enum.StrEnum):
    QUARANTINE = "quarantine"  # fail closed: the rows of a rule that cannot run are invalid (reason rule_error)
    PASS = "pass"  # report the error verdict only; the rows are judged by the other rules


class Compression(enum.StrEnum):
    """Codec of the record batches the worker produces (Kafka's ``compression.type``)."""

    NONE = "none"
    GZIP = "gzip"
    SNAPPY = "snappy"
    LZ4 = "lz4"
    ZSTD = "zstd"


#: the levels each codec accepts (Kafka's ``compression.<codec>.level`` ranges, KIP-390); none and snappy have none
COMPRESSION_LEVELS: dict[Compression, tuple[int, int]] = {
    Compression.ZSTD: (-131072, 22), Compression.LZ4: (1, 17), Compression.GZIP: (1, 9),
}  # fmt: skip


class SecurityProtocol(enum.StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class Settings(BaseSettings):
    """Configuration of a quality-streams worker. Immutable once built."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMS_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )

    # --- where
    bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("STREAMS_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS", "bootstrap_servers"),
        description="Kafka bootstrap servers, comma-separated host:port.",
    )
    contracts_dir: Path = Field(Path("contracts"), description="Directory (or file) of ODCS contracts to enforce.")
    app_id: str = Field("quality-streams", description="Application id: the consumer group and the faust app name.")
    mode: Mode = Field(Mode.GATE, description="gate: forward valid records; monitor: observe only.")

    # --- topics
    events_topic: str = Field("dq.quality-events.v1", description="Topic for CloudEvents quality events.")
    validated_suffix: str = ".validated"
    quarantine_suffix: str = ".quarantine"
    dlq_suffix: str = ".dlq"
    create_topics: bool = Field(True, description="Create missing output topics at start.")
    topic_partitions: int = Field(3, ge=1, description="Partitions for topics the worker creates.")
    topic_replication: int = Field(1, ge=1, description="Replication factor for topics the worker creates.")

    # --- batching
    batch_max_records: int = Field(5000, ge=1, description="Most records handed to the engine in one batch.")
    batch_max_latency_ms: int = Field(200, ge=1, description="Longest a record waits for its batch to fill.")
    max_message_bytes: int = Field(1_048_576, ge=1, description="Larger messages are dead-lettered.")

    # --- delivery
    exactly_once: bool = Field(False, description="Use Kafka transactions (experimental) instead of at-least-once.")
    transaction_interval_ms: int = Field(
        0,
        ge=0,
        description="Exactly-once: how long a transaction stays open across full polls (a backlog) for more "
        "polls; 0: it commits after its polls (those processed while the last one committed).",
    )
    transaction_max_records: int = Field(
        20_000,
        ge=1,
        description="Exactly-once: most records of one transaction (its polls processed ahead, or kept open for).",
    )
    transaction_max_latency_ms: int = Field(
        150,
        ge=1,
        description="Exactly-once: a transaction grows by polls processed while the last one commits only while its "
        "first poll's records would still commit within this (their age, a poll's processing and a commit, as "
        "measured).",
    )
    header_prefix: str = Field("qstreams.", description="Prefix of the headers the worker adds.")
    failure_case_sample: int = Field(20, ge=0, description="Failure cases carried by a rule-violation event.")
    on_rule_error: OnRuleError = Field(
        OnRuleError.QUARANTINE,
        description="A rule that cannot be evaluated on a batch: quarantine its rows (fail closed, reason "
        "rule_error) or pass them (the error verdict is reported either way).",
    )

    # --- worker runtime (streams.kafka.worker)
    worker_id: str | None = Field(
        None,
        description="Worker identity in events, logs and the transactional id (default host-pid; set a stable "
        "name such as the pod name with exactly_once).",
    )
    max_inflight_batches: int = Field(
        8, ge=1, description="Batches whose outputs may await broker acknowledgement before polling pauses."
    )
    poll_ahead: bool = Field(
        False, description="Read the next poll while the current one is processed, on a backlog (full polls)."
    )
    batch_retries: int = Field(
        3, ge=0, description="Retries of a batch whose processing raised, before its messages are dead-lettered."
    )
    retry_backoff_ms: int = Field(500, ge=1, description="First retry delay; doubles per attempt up to 30 s.")
    linger_ms: int = Field(5, ge=0, description="Producer linger: how long a batch of outputs waits to fill.")
    producer_batch_bytes: int = Field(1_048_576, ge=16_384, description="Largest record batch the producer builds.")
    output_compression: Compression = Field(
        Compression.ZSTD,
        description="Codec of the record batches the worker produces (outputs, events, stream-time state): zstd "
        "costs the worker no more CPU than none and the broker less (docs/scaling.md); consumers need zstd "
        "(every Kafka client since 2.1); none, gzip, snappy and lz4 are accepted.",
    )
    output_compression_level: int | None = Field(
        None,
        description="Level of the output codec (Kafka's compression.<codec>.level): zstd -131072..22, lz4 1..17, "
        "gzip 1..9; unset: zstd 1, lz4 1, gzip 6 (zstd 1 compresses feature records as well as Kafka's default 3 "
        "at 2/3 of its CPU, docs/scaling.md). Applies to every aiokafka producer of the process (aiokafka has no "
        "per-producer level).",
    )
    topic_check_interval_s: float = Field(
        5.0, gt=0, description="How often the broker is probed and missing source topics are looked for again."
    )
    health_max_age_s: float = Field(
        30.0, gt=0, description="/health fails when a binding has not polled for this long."
    )

    # --- stream time (streams.windows): defaults of the contracts' qstreams.* custom properties
    stream_time: bool = Field(
        True, description="Judge the stream over event-time windows and enforce stream uniqueness (window summaries)."
    )
    window_seconds: float = Field(60.0, gt=0, description="Tumbling event-time window size (qstreams.window).")
    allowed_lateness_seconds: float = Field(
        10.0, ge=0, description="How far behind a partition's newest event time a record still counts in its window."
    )
    window_idle_close_seconds: float = Field(
        30.0, gt=0, description="A partition without records for this long (processing time) holds no window open."
    )
    max_clock_skew_seconds: float = Field(
        300.0, ge=0, description="Event times beyond the wall clock plus this do not advance the watermark (skewed)."
    )
    unique_horizon_seconds: float = Field(
        86_400.0,
        gt=0,
        description="How long a unique/primaryKey value stays claimed on the stream (qstreams.uniqueWithin).",
    )
    batch_events: bool = Field(
        False, description="Also emit one batch.summary event per batch (off: window summaries)."
    )
    state_partitions: int = Field(
        6, ge=1, description="Partitions of the compacted stream-time topics the worker creates."
    )

    # --- the quarantine control topic of quarantine-stream policies (streams.policies.control, docs/policies.md)
    control_backoff_s: float = Field(
        1.0, gt=0, description="First wait before the control topic is read again after it could not be read."
    )
    control_max_backoff_s: float = Field(
        30.0, gt=0, description="Longest such wait: the wait doubles from control_backoff_s up to this."
    )
    control_catch_up_s: float = Field(
        15.0, ge=0, description="How long a starting worker waits to read the control topic to its end (then forwards)."
    )
    control_refresh_s: float = Field(
        60.0, gt=0, description="How often a worker following the control topic looks for partitions added to it."
    )

    # --- security
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None

    # --- web / observability
    web_host: str = Field("127.0.0.1", description="Bind address of /metrics and /health.")
    web_port: int = Field(6066, ge=0, le=65535, description="Port of /metrics and /health (0 = none).")
    log_level: str = Field("INFO", description="Python logging level.")

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, v: str) -> str:
        return normalize_bootstrap(v)

    @field_validator("control_max_backoff_s")
    @classmethod
    def _control_backoff(cls, v: float, info: ValidationInfo) -> float:
        first = info.data.get("control_backoff_s")
        if first is not None and v < first:
            raise ValueError(f"must be at least STREAMS_CONTROL_BACKOFF_S ({first}), the first wait it doubles from")
        return v

    @field_validator("output_compression_level")
    @classmethod
    def _compression_level(cls, v: int | None, info: ValidationInfo) -> int | None:
        codec = info.data.get("output_compression")
        if v is None or codec is None:
            return v
        bounds = COMPRESSION_LEVELS.get(codec)
        if bounds is None:
            raise ValueError(f"{codec} has no compression level; unset STREAMS_OUTPUT_COMPRESSION_LEVEL")
        if not bounds[0] <= v <= bounds[1]:
            raise ValueError(f"a {codec} level is {bounds[0]}..{bounds[1]} (Kafka's range), got {v}")
        return v

    def output_topic(self, topic: str, kind: str) -> str:
        """``<topic>.validated`` / ``.quarantine`` / ``.dlq`` for a source topic."""
        suffix = {"validated": self.validated_suffix, "quarantine": self.quarantine_suffix, "dlq": self.dlq_suffix}
        return topic + suffix[kind]


def load_settings(**overrides: Any) -> Settings:
    """:class:`Settings` from the environment and ``overrides``; :class:`SettingsError` naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            field = Settings.model_fields.get(name)
            alias = field.validation_alias if field is not None else None
            env = "KAFKA_BOOTSTRAP_SERVERS" if isinstance(alias, AliasChoices) else f"STREAMS_{name.upper()}"
            problems.append(f"{env} ({name}): {err['msg']}")
        raise SettingsError(
            f"{len(problems)} invalid setting(s): " + "; ".join(problems) + ". Check the environment, .env and options."
        ) from None
