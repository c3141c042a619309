"""Red team 3: the agent on the windows the workers really publish (skewed windows, pooled versions, restarts)."""

from __future__ import annotations

import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.errors import ContractError
from streams.policies.agent import PolicyAgent

from .conftest import CONTRACT
from .summaries import T0, message, summary
from .test_agent import EVENTS, decisions, settings


def test_a_window_only_skewed_records_reached_does_not_blind_the_policies(contract: Contract) -> None:
    # the workers publish a window that only records with event times a year ahead reached (an idle close);
    # taken, it made every real window after it a replay: the stream was quarantined on the skewed window's
    # verdict and no policy saw anything for a year
    now = (T0.timestamp() + 3600.0)
    agent = PolicyAgent([contract], settings(), EVENTS, now=lambda: now)
    out = agent.handle(message(summary(contract, 0, 0.0), EVENTS, offset=0))
    out += agent.handle(message(summary(contract, 365 * 24 * 60, 0.05), EVENTS, offset=1))
    out += agent.handle(message(summary(contract, 1, 0.05), EVENTS, offset=2))
    out += agent.handle(message(summary(contract, 2, 0.05), EVENTS, offset=3))
    assert decisions(out) == [("triggered", "window-failing"), ("triggered", "amount-out-of-range")]
    assert agent.ahead == 1


def test_two_versions_of_one_contract_are_refused(contract: Contract) -> None:
    # their policies share incident keys: the second version's policies were silently never judged (each of its
    # windows a "replay" of the first's), and its events rendered with whichever version came last
    newer = parse_contract(CONTRACT.replace("version: 1.0.0", "version: 1.1.0"), path="payments-1.1.yaml")
    with pytest.raises(ContractError, match="given twice"):
        PolicyAgent([contract, newer], settings(), EVENTS)
