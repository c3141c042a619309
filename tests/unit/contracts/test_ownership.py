"""Ownership (issue 12 §1): a contract in use names an owner and a support channel, or lint fails with file:line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.loader import load_contract, parse_contract
from streams.contracts.ownership import ownership_of
from streams.lint import lint_file

ROOT = Path(__file__).resolve().parents[3]
HEAD = "apiVersion: v3.1.0\nkind: DataContract\nid: urn:test:own\nversion: 1.0.0\nstatus: {status}\n"
SCHEMA = "schema:\n  - name: t\n    properties:\n      - {name: a, logicalType: string}\n"
TEAM = "team:\n  name: shop\n"
SUPPORT = "support:\n  - {channel: '#shop-oncall', tool: slack, url: https://chat.example.com/shop}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def problems(path: Path, **kw: bool) -> list[tuple[int | None, str]]:
    return [(f.line, f.message) for f in lint_file(path, **kw) if not f.note]


def test_a_contract_in_use_without_owner_or_channel_fails_at_the_status_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD.format(status="active") + SCHEMA)
    found = problems(path)
    assert [line for line, _ in found] == [5, 5]
    assert "names no owner" in found[0][1] and "names no support channel" in found[1][1]
    assert problems(path, allow_unowned=True) == []
    assert problems(write(tmp_path, HEAD.format(status="draft") + SCHEMA)) == []


@pytest.mark.parametrize("status", ["proposed", "active", "deprecated", "retired"])
def test_every_status_but_draft_needs_an_owner(tmp_path: Path, status: str) -> None:
    assert len(problems(write(tmp_path, HEAD.format(status=status) + SUPPORT + SCHEMA))) == 1


def test_a_team_without_name_or_owner_member_is_named_at_its_line(tmp_path: Path) -> None:
    team = (
        "team:\n  members:\n    - {username: ana, role: data steward}\n"
        "    - {username: bo, role: owner, dateOut: '2020-01-01'}\n"
    )
    path = write(tmp_path, HEAD.format(status="active") + team + SUPPORT + SCHEMA)
    (found,) = problems(path)
    assert found[0] == 6 and "names no owner" in found[1]  # the `team:` line; bo left in 2020


@pytest.mark.parametrize(
    "team",
    [
        TEAM,
        "team:\n  members:\n    - {username: ana, role: Owner}\n",  # ODCS examples write `Owner`
        "team:\n  - {username: ana, role: owner}\n",  # v3.0.x: a list of members
    ],
)
def test_a_team_name_or_an_owner_member_is_an_owner(tmp_path: Path, team: str) -> None:
    text = HEAD.format(status="active") + team + SUPPORT + SCHEMA
    if team.startswith("team:\n  - "):
        text = text.replace("v3.1.0", "v3.0.2")
    assert problems(write(tmp_path, text)) == []


def test_support_missing_is_named_at_the_status_line(tmp_path: Path) -> None:
    (found,) = problems(write(tmp_path, HEAD.format(status="active") + TEAM + SCHEMA))
    assert found[0] == 5 and "support channel" in found[1]


def test_the_ownership_accessor() -> None:
    text = (
        HEAD.format(status="active")
        + "team:\n  name: shop\n  members:\n    - {username: ana, role: owner}\n    - {username: bo, role: steward}\n"
        + "    - {username: cy, role: owner, dateIn: '2999-01-01'}\n"
        + "  authoritativeDefinitions:\n    - {type: runbook, url: https://wiki.example.com/team-runbook}\n"
        + SUPPORT
        + SCHEMA
    )
    own = parse_contract(text).ownership
    assert own.team == "shop" and own.owners == ("ana",) and own.members == ("ana", "bo")
    assert (own.support_channel, own.support_url, own.support_tool) == (
        "#shop-oncall",
        "https://chat.example.com/shop",
        "slack",
    )
    assert own.runbook_url == "https://wiki.example.com/team-runbook"
    contract_level = text.replace(
        "support:", "authoritativeDefinitions:\n  - {type: Runbook, url: https://wiki.example.com/rb}\nsupport:"
    )
    assert parse_contract(contract_level).ownership.runbook_url == "https://wiki.example.com/rb"
    assert own.as_dict()["owners"] == ["ana"]


def test_membership_dates() -> None:
    data = {"team": {"members": [{"username": "a", "role": "owner", "dateOut": "2026-06-01"}]}}
    assert ownership_of(data, today=dt.date(2026, 5, 31)).owners == ("a",)
    assert ownership_of(data, today=dt.date(2026, 6, 1)).owners == ()


def test_the_example_contracts_are_owned_and_the_cli_flag_relaxes(tmp_path: Path) -> None:
    features = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml").ownership
    assert features.team == "payments-features" and features.owners == ("ana.ribeiro@example.com",)
    assert features.support_channel == "#payments-features-oncall"
    runner = CliRunner()
    assert runner.invoke(app, ["contracts", "lint", str(ROOT / "contracts")]).exit_code == 0
    path = write(tmp_path, HEAD.format(status="active") + SCHEMA)
    res = runner.invoke(app, ["contracts", "lint", str(path)])
    assert res.exit_code == 1 and f"{path}:5: the contract's status is 'active' but it names no owner" in res.stdout
    assert runner.invoke(app, ["contracts", "lint", "--allow-unowned", str(path)]).exit_code == 0
