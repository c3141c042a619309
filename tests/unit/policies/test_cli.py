"""The policy commands refuse bad input with exit 2 and a sentence, before touching Kafka."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from streams.cli.main import app

from .conftest import write


def test_incidents_resolve_refuses_what_is_not_an_incident_id() -> None:
    res = CliRunner().invoke(app, ["incidents", "resolve", "INC-42", "--broker", "127.0.0.1:1"])
    assert res.exit_code == 2 and "is not an incident id" in res.output


def test_policies_run_refuses_a_contract_with_a_bad_policy(tmp_path: Path) -> None:
    bad = write(tmp_path, "          - {name: x, when: {metric: rule.failure_rate, rule: nope, above: 0.1}}\n")
    res = CliRunner().invoke(app, ["policies", "run", "--contract", str(bad), "--broker", "127.0.0.1:1"])
    assert res.exit_code == 2 and "c.yaml:" in res.output and "nope" in res.output


def test_policies_run_refuses_bad_webhook_settings(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STREAMS_POLICY_WEBHOOKS", '[{"name": "x", "url": "ftp://nowhere"}]')
    good = write(tmp_path, "          - {name: x, when: {metric: window.failed}}\n")
    res = CliRunner().invoke(app, ["policies", "run", "--contract", str(good), "--broker", "127.0.0.1:1"])
    assert res.exit_code == 2 and "STREAMS_POLICY_WEBHOOKS" in res.output


def test_events_tail_refuses_an_unknown_severity() -> None:
    res = CliRunner().invoke(app, ["events", "tail", "--severity", "fatal", "--broker", "127.0.0.1:1"])
    assert res.exit_code == 2 and "unknown severity" in res.output
