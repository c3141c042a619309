"""Red team 3: lint refuses a condition no window can meet (thresholds are strict), with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.contracts.loader import load_contract
from streams.errors import ContractSchemaError
from streams.policies import parse_policies, policy_findings

from .conftest import write

NEVER = [
    ("share-above-1", "{name: p, when: {metric: window.invalid_rate, above: 1}}",
     "never above 1", "would never trigger"),
    ("share-below-0", "{name: p, when: {metric: confidence.low_share, below: 0}}",
     "never below 0", "would never trigger"),
    ("count-below-0", "{name: p, when: {metric: window.records, below: 0}}", "never below 0", "would never trigger"),
    # any failure opens it; a clear window would need fewer than 0 failures: the incident stayed open for good
    # (write no resolve threshold: a window with 0 failures is clear)
    ("resolve-count-below-0",
     "{name: p, when: {metric: rule.failures, rule: 'amount:maximum', above: 0}, resolve: {below: 0}}",
     "never below 0", "would never resolve"),
    ("resolve-share-below-0", "{name: p, when: {metric: window.late_rate, above: 0}, resolve: {below: 0}}",
     "never below 0", "would never resolve"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "policy", "fragment", "why"), NEVER, ids=[c[0] for c in NEVER])
def test_a_condition_no_window_can_meet_is_a_finding(tmp_path: Path, case: str, policy: str, fragment: str,
                                                     why: str) -> None:  # fmt: skip
    path = write(tmp_path, f"          - {policy}\n")
    (finding,) = policy_findings(load_contract(path))
    assert fragment in finding.message and why in finding.message, finding
    assert "- {name: p" in path.read_text().splitlines()[finding.line - 1]  # type: ignore[operator]
    with pytest.raises(ContractSchemaError, match=why):
        parse_policies(load_contract(path))


def test_thresholds_at_the_edge_that_a_window_can_pass_are_accepted(tmp_path: Path) -> None:
    ok = [
        "{name: a, when: {metric: window.invalid_rate, above: 0.1}, resolve: {below: 0.05}}",
        "{name: b, when: {metric: window.records, below: 1}}",
        "{name: c, when: {metric: rule.failures, rule: 'amount:maximum', above: 0}, resolve: {after: 2}}",  # 0 clears
        "{name: d, when: {metric: confidence.mean_change, below: -0.2}}",
    ]
    path = write(tmp_path, "".join(f"          - {p}\n" for p in ok))
    assert policy_findings(load_contract(path)) == []
