"""qstreams events tail: the filter, the aggregated view and the JSON lines (pure; the broker test runs the CLI)."""

from __future__ import annotations

import orjson
from rich.console import Console

from streams.contracts.model import Contract
from streams.events import from_kafka
from streams.policies.agent import PolicyAgent
from streams.policies.config import PolicySettings
from streams.policies.tail import TailFilter, TailView, json_line

from .summaries import message, summary


def stream(contract: Contract) -> list:  # type: ignore[type-arg]
    """Window summaries and the policy events the agent makes of them, as a consumer of the topic sees them."""
    agent = PolicyAgent([contract], PolicySettings(), "ev")
    out = []
    for i, rate in enumerate([0.0, 0.02, 0.03]):
        m = message(summary(contract, i, rate), "ev", i)
        out.append(from_kafka(m.key, m.value, m.headers))
        out += [from_kafka(r.key, r.value, r.headers) for r in agent.handle(m) if r.topic == "ev"]
    return out


def test_filter_by_contract_type_and_severity(contract: Contract) -> None:
    events = stream(contract)
    kinds = [e.get_type().split(".")[2] for e in events]
    assert kinds.count("window") == 3 and kinds.count("policy") == 3  # 2 triggered + the quarantine engaged
    assert len([e for e in events if TailFilter(type="window.summary").matches(e)]) == 3
    full = "io.qualitystreams.policy.triggered.v1"
    assert len([e for e in events if TailFilter(type=full).matches(e)]) == 2
    assert [e for e in events if TailFilter(contract="urn:other").matches(e)] == []
    errors = [e.get_type() for e in events if TailFilter(severity="error").matches(e)]
    # failing windows (error), window-failing (error), amount-out-of-range (critical -> error)
    assert errors.count("io.qualitystreams.window.summary.v1") == 2 and errors.count(full) == 2
    assert len([e for e in events if TailFilter(severity="ok").matches(e)]) == len(events)


def test_view_rates_verdicts_failing_rules_and_open_incidents(contract: Contract) -> None:
    clock = [100.0]
    view = TailView(now=lambda: clock[0])
    for e in stream(contract):
        view.add(e)
    assert view.rates() == {contract.id: len(stream(contract)) / 60}
    assert [v["passed"] for v in view.verdicts] == [False, False, True]  # newest first
    assert view.failing.most_common(1) == [((contract.id, "amount:maximum"), 50)]  # 20 + 30
    assert sorted(i["policy"] for i in view.incidents.values()) == ["amount-out-of-range", "window-failing"]
    assert {i["owner"] for i in view.incidents.values()} == {"ana"}
    console = Console(width=200, record=True)
    console.print(view.render())
    text = console.export_text()
    assert "amount-out-of-range" in text and "#payments-oncall" in text and "amount:maximum" in text
    clock[0] += 61
    assert view.rates() == {contract.id: 0.0}


def test_json_lines(contract: Contract) -> None:
    e = stream(contract)[0]
    line = orjson.loads(json_line(e))
    assert line["type"] == "io.qualitystreams.window.summary.v1" and line["contract"] == contract.id
    assert line["data"]["window"]["start"] == "2026-03-01T12:00:00Z" and line["id"] == e.get_id()
