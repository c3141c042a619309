"""One connection model: every client gets the settings' bootstrap and security; bad settings raise SettingsError."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from streams.errors import SettingsError, StreamsError
from streams.kafka.connection import (
    FETCH_MIN_BYTES,
    consumer_config,
    fetch_wait_ms,
    plain_producer_config,
    producer_config,
)
from streams.settings import SecurityProtocol, Settings, load_settings


def test_tool_producers_get_the_security_settings_of_the_worker() -> None:
    settings = Settings(
        bootstrap_servers="b1:9092", security_protocol=SecurityProtocol.SASL_PLAINTEXT, sasl_mechanism="plain",
        sasl_username="svc", sasl_password=SecretStr("s3cret"),
    )  # fmt: skip
    tool = plain_producer_config(settings, "qstreams-produce", acks="all", linger_ms=20)
    worker = producer_config(settings, "w1")
    wanted = ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password")
    assert {k: tool[k] for k in wanted} == {k: worker[k] for k in wanted}
    assert tool["sasl_plain_password"] == "s3cret" and tool["client_id"] == "qstreams-produce" and tool["acks"] == "all"
    assert "s3cret" not in repr(settings)


def test_incomplete_security_settings_are_refused_for_tools_too() -> None:
    settings = Settings(bootstrap_servers="b1:9092", security_protocol=SecurityProtocol.SASL_SSL)
    with pytest.raises(SettingsError, match="sasl_mechanism"):
        plain_producer_config(settings, "qstreams-demo")


def test_invalid_settings_raise_settings_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_BATCH_MAX_RECORDS", "0")
    with pytest.raises(SettingsError, match=r"STREAMS_BATCH_MAX_RECORDS \(batch_max_records\)") as info:
        load_settings()
    assert isinstance(info.value, StreamsError) and info.value.__cause__ is None
    with pytest.raises(SettingsError, match=r"KAFKA_BOOTSTRAP_SERVERS \(bootstrap_servers\)"):
        load_settings(bootstrap_servers="no-port", batch_max_records=10)


@pytest.mark.parametrize(("latency_ms", "wait_ms"), [(200, 50), (2_000, 500), (10_000, 500), (4, 1)])
def test_the_broker_holds_a_workers_fetch_for_more_records_within_the_batch_latency(latency_ms: int,
                                                                                   wait_ms: int) -> None:  # fmt: skip
    """A slow feed's records were fetched one response each (~140 responses a second at 500 records/s, issue 13):
    the broker now answers when ``FETCH_MIN_BYTES`` arrived or after a quarter of ``batch_max_latency_ms`` (at most
    Kafka's default 500 ms); the fill takes that wait off its own (``test_filling``)."""
    s = Settings(batch_max_latency_ms=latency_ms)
    config = consumer_config(s, "w")
    assert fetch_wait_ms(s) == wait_ms == config["fetch_max_wait_ms"] < latency_ms
    assert config["fetch_min_bytes"] == FETCH_MIN_BYTES


def test_a_batch_latency_under_4_ms_is_not_held_by_the_broker() -> None:
    config = consumer_config(Settings(batch_max_latency_ms=3), "w")
    assert fetch_wait_ms(Settings(batch_max_latency_ms=3)) == 0
    assert "fetch_min_bytes" not in config and "fetch_max_wait_ms" not in config  # aiokafka's: 1 byte, 500 ms
