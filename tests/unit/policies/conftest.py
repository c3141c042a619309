"""A contract with response policies, shared by the policy tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract

POLICIES = """\
          - name: amount-out-of-range
            description: Amounts above the maximum in more than 1% of a window, two windows running.
            when: {metric: rule.failure_rate, rule: "amount:maximum", above: 0.01}
            for: 2
            severity: critical
            action: page
            cooldown: 10m
            resolve: {after: 2, below: 0.005}
          - name: window-failing
            when: {metric: window.failed}
            action: quarantine-stream
            severity: error
          - name: amount-drift
            when: {metric: drift.psi, field: amount, above: 0.2}
            for: 3
            action: retrain-candidate
            model_version: fraud-v3
"""

CONTRACT = f"""\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:payments
version: 1.0.0
status: active
team:
  name: payments
  members:
    - {{username: ana, role: owner}}
  authoritativeDefinitions:
    - {{type: runbook, url: https://wiki.example.com/payments-runbook}}
support:
  - {{channel: "#payments-oncall", url: https://chat.example.com/payments}}
schema:
  - name: payments
    physicalName: shop.payments.v1
    customProperties:
      - property: qstreams.policies
        value:
{POLICIES}    properties:
      - {{name: id, logicalType: string, required: true}}
      - name: amount
        logicalType: number
        logicalTypeOptions: {{minimum: 0, maximum: 1000}}
    quality:
      - {{name: enough_rows, metric: rowCount, mustBeGreaterThan: 0}}
"""


@pytest.fixture
def contract() -> Contract:
    return parse_contract(CONTRACT, path="payments.yaml")


def write(tmp_path: Path, policies: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(CONTRACT.replace(POLICIES, policies))
    return path
