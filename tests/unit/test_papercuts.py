"""First-hour papercuts on the Kafka side (issue 9): broker URLs, CLI help, dev broker output, provenance headers."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.loader import load_contract
from streams.errors import SettingsError
from streams.pipeline.binding import Binding
from streams.pipeline.deadletter import internal_dead_letters
from streams.pipeline.headers import header
from streams.settings import Mode, Settings, load_settings
from streams.testing import Fault, generate_feature_records, make_messages

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "features.card-transactions.v1"
runner = CliRunner()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("kafka://broker:9092", "broker:9092"),
        ("kafka://a:9092,kafka://b:9093", "a:9092,b:9093"),
        ("kafka://a:9092;b:9093/", "a:9092,b:9093"),
        (" a:1 , b:2 ", "a:1,b:2"),
        ("PLAINTEXT://x:9092", "x:9092"),
        ("SASL_SSL://x:9093", "x:9093"),
        ("[::1]:9092", "[::1]:9092"),
    ],
)
def test_broker_urls_and_lists_are_accepted(given: str, expected: str) -> None:
    assert Settings(bootstrap_servers=given).bootstrap_servers == expected


@pytest.mark.parametrize("given", ["kafka://broker", "broker", "", "kafka://", "a:b", "http://x:1/path"])
def test_a_broker_without_a_port_is_refused_with_its_entry(given: str) -> None:
    with pytest.raises(SettingsError, match="host:port"):
        load_settings(bootstrap_servers=given)


def test_worker_takes_a_kafka_url(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []
    monkeypatch.setattr("streams.kafka.worker.run_worker", lambda s, *extend: seen.append(s) or 0)
    res = runner.invoke(app, ["worker", "--broker", "kafka://localhost:9092", "--web-port", "0"])
    assert res.exit_code == 0, res.output
    assert [s.bootstrap_servers for s in seen] == ["localhost:9092"]


@pytest.mark.parametrize("command", [["worker"], ["validate"], ["demo"], ["produce"], ["dev", "broker"],
                                     ["contracts", "lint"], []])  # fmt: skip
def test_help_shows_env_names_and_no_type_placeholders(command: list[str]) -> None:
    res = runner.invoke(app, [*command, "--help"])
    assert res.exit_code == 0, res.output
    assert not re.search(r"--help\s+<", res.output), res.output
    assert "<bool>" not in res.output and "<int>" not in res.output and "<float>" not in res.output, res.output
    assert " ." not in res.output.replace("...", ""), res.output  # a swallowed "[env X]" left "file ."


def test_worker_help_names_its_environment_variables() -> None:
    out = runner.invoke(app, ["worker", "--help"]).output
    assert "[env STREAMS_CONTRACTS_DIR]" in out and "[env KAFKA_BOOTSTRAP_SERVERS]" in out


def test_dev_broker_quiets_the_kafka_client_loggers(monkeypatch: pytest.MonkeyPatch) -> None:
    levels: dict[str, int] = {}

    def fake_run(port: int, ready: Any) -> None:
        levels.update({n: logging.getLogger(n).getEffectiveLevel() for n in ("kafka", "kafka.conn", "aiokafka")})
        ready("127.0.0.1:1")

    monkeypatch.setattr("streams.dev.broker.run_dev_broker", fake_run)
    for name in ("kafka", "aiokafka"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    monkeypatch.setattr(logging.getLogger(), "level", logging.INFO)  # as `_logging("INFO")` leaves it
    res = runner.invoke(app, ["dev", "broker", "--port", "1"])
    assert res.exit_code == 0, res.output
    assert levels and min(levels.values()) >= logging.WARNING, levels


def test_dev_broker_errors_point_to_a_script_that_exists() -> None:
    text = (ROOT / "streams" / "dev" / "maven.py").read_text()
    scripts = set(re.findall(r"run ([\w./-]*install-kafka)", text))
    assert scripts == {"scripts/install-kafka"}
    assert all((ROOT / s).is_file() for s in scripts)


@pytest.mark.parametrize("mode", ["gate", "monitor"])
def test_quarantined_and_dead_lettered_records_say_which_mode_and_worker(mode: str) -> None:
    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    batch = generate_feature_records(50, seed=2, faults={Fault.OUT_OF_RANGE.value: 0.2})
    values = [orjson.dumps(r) for r in batch.records] + [b"not json"]
    result = Binding(contract, contract.schema(), Settings(mode=Mode(mode))).process(
        make_messages(values, TOPIC), worker_id="pod-7"
    )
    bad = result.quarantined + result.dead_lettered
    assert result.quarantined and result.dead_lettered
    assert {(header(r.headers, "qstreams.mode"), header(r.headers, "qstreams.worker")) for r in bad} == {
        (mode.encode(), b"pod-7")
    }
    assert all(header(r.headers, "qstreams.worker") is None for r in result.validated)
    given_up = internal_dead_letters("c@1", make_messages(values[:2], TOPIC), ValueError("x"), Settings(),
                                     worker_id="pod-8")  # fmt: skip
    assert {header(r.headers, "qstreams.worker") for r in given_up.dead_lettered} == {b"pod-8"}


def test_readme_consumer_reads_from_the_earliest_offset() -> None:
    readme = (ROOT / "README.md").read_text()
    snippets = [s for s in readme.split("```python")[1:] if "KafkaConsumer(" in s.split("```")[0]]
    assert snippets and all('auto_offset_reset="earliest"' in s.split("```")[0] for s in snippets)
