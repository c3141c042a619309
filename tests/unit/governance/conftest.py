"""The payments contract with response policies (shared with the policy tests)."""

from __future__ import annotations

import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from tests.unit.policies.conftest import CONTRACT


@pytest.fixture
def contract() -> Contract:
    return parse_contract(CONTRACT, path="payments.yaml")
