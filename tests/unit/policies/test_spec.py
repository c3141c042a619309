"""Response policies in the contract: parsed into frozen policies; every mistake a file:line lint finding."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.loader import load_contract
from streams.contracts.model import Contract
from streams.errors import ContractSchemaError, StreamsError
from streams.lint import lint_file
from streams.policies import Action, PolicySeverity, parse_duration, parse_policies, policy_findings

from .conftest import write


def test_policies_parse_into_frozen_objects(contract: Contract) -> None:
    page, quarantine, drift = parse_policies(contract)
    assert (page.name, page.windows, page.severity, page.action) == (
        "amount-out-of-range", 2, PolicySeverity.CRITICAL, Action.PAGE,
    )  # fmt: skip
    assert page.condition.describe() == "rule.failure_rate[amount:maximum] above 0.01"
    assert page.cooldown_seconds == 600 and page.resolve_after == 2
    assert page.resolve_condition is not None and page.resolve_condition.describe().endswith("below 0.005")
    assert page.key == "urn:test:payments#amount-out-of-range" and page.line == 20
    assert quarantine.condition.comparator is None and quarantine.resolve_after == 1
    assert drift.model_version == "fraud-v3" and drift.resolve_after == 3  # resolve.after defaults to `for`
    with pytest.raises(AttributeError):
        page.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("2d", 172800),
        ("250ms", 0.25),
        ("0s", 0),
        ("PT5M", 300),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "10", "", "m5", "1h30", "-5m", 300, True, None])
def test_bad_durations(text: object) -> None:
    assert parse_duration(text) is None


BAD = [
    ("unknown-rule", '{name: p, when: {metric: rule.failure_rate, rule: "amount:maximun", above: 0.01}}',
     "unknown rule of schema object 'payments': 'amount:maximun'; did you mean 'amount:maximum'?", 1),
    ("unknown-field", "{name: p, when: {metric: drift.psi, field: amout, above: 0.2}}",
     "did you mean 'amount'?", 1),
    ("unknown-metric", "{name: p, when: {metric: rule.failure_rat, rule: 'amount:maximum', above: 0.01}}",
     "unknown metric 'rule.failure_rat'; did you mean 'rule.failure_rate'?", 1),
    ("unknown-action", "{name: p, when: {metric: window.failed}, action: pager}",
     "unknown action 'pager'; did you mean 'page'?", 1),
    ("bad-cooldown", "{name: p, when: {metric: window.failed}, cooldown: 5 minutes}",
     "cooldown '5 minutes' is not a duration", 1),
    ("unknown-key", "{name: p, when: {metric: window.failed}, cooldwn: 5m}",
     "unknown key 'cooldwn' in a policy (did you mean 'cooldown'?)", 1),
    ("rollback-needs-model", "{name: p, when: {metric: window.failed}, action: rollback-candidate}",
     "needs `model_version:`", 1),
    ("boolean-with-threshold", "{name: p, when: {metric: window.failed, above: 1}}", "takes no `above:`", 1),
    ("rate-out-of-range", "{name: p, when: {metric: window.invalid_rate, above: 5}}", "1% is 0.01", 1),
    ("missing-threshold", "{name: p, when: {metric: lag.records}}", "exactly one of `above:` or `below:`", 1),
    ("batch-rule-rate", "{name: p, when: {metric: rule.failure_rate, rule: enough_rows, above: 0.1}}",
     "is a batch metric", 1),
    ("bad-for", "{name: p, when: {metric: window.failed}, for: 0}", "`for` must be a whole number", 1),
    ("overlapping-hysteresis", "{name: p, when: {metric: lag.records, above: 100}, resolve: {below: 200}}",
     "overlaps the trigger", 1),
    ("wrong-side-resolve", "{name: p, when: {metric: lag.records, above: 100}, resolve: {above: 50}}",
     "resolves `below:`", 1),
    ("duplicate-names",
     "{name: p, when: {metric: window.failed}}\n          - {name: p, when: {metric: lag.records, above: 1}}",
     "two policies are named 'p'", 1),
    ("two-problems", "{name: p, when: {metric: nope}, action: pagee}", "unknown metric 'nope'", 2),
]  # fmt: skip


@pytest.mark.parametrize(("case", "policy", "fragment", "count"), BAD, ids=[b[0] for b in BAD])
def test_bad_policies_are_file_line_findings(tmp_path: Path, case: str, policy: str, fragment: str, count: int) -> None:
    path = write(tmp_path, f"          - {policy}\n")
    contract = load_contract(path)
    findings = policy_findings(contract)
    assert len(findings) == count, findings
    assert fragment in findings[0].message, findings[0]
    line = path.read_text().splitlines()[findings[0].line - 1]  # type: ignore[operator]
    assert "name: p" in line or "- {name" in line or case == "duplicate-names", line
    assert [str(f) for f in lint_file(path) if not f.note][:count] == [str(f) for f in findings]
    with pytest.raises(ContractSchemaError) as err:
        parse_policies(contract)
    assert isinstance(err.value, StreamsError) and err.value.line == findings[0].line


def test_findings_on_nested_keys_name_their_own_line(tmp_path: Path) -> None:
    policy = (
        "          - name: p\n            when:\n              metric: window.failed\n"
        "            action: page\n            cooldown: soon\n"
    )
    path = write(tmp_path, policy)
    (finding,) = policy_findings(load_contract(path))
    assert path.read_text().splitlines()[finding.line - 1].strip() == "cooldown: soon"  # type: ignore[operator]


def test_cli_lint_exits_1_on_a_bad_policy_and_0_on_good_ones(tmp_path: Path, contract: Contract) -> None:
    good = tmp_path / "good.yaml"
    from .conftest import CONTRACT

    good.write_text(CONTRACT)
    runner = CliRunner()
    assert runner.invoke(app, ["contracts", "lint", str(good)]).exit_code == 0
    bad = write(tmp_path, "          - {name: p, when: {metric: window.failed}, action: reboot}\n")
    res = runner.invoke(app, ["contracts", "lint", str(bad)])
    assert res.exit_code == 1 and f"{bad}:" in res.stdout and "unknown action 'reboot'" in res.stdout
