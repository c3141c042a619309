"""Red team 3: the windows an incident is decided on: gaps, order, duplicates, equality, no value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.contracts.model import Contract
from streams.policies import DecisionKind, IncidentBook, Observation, RuleOutcome, parse_policies

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RULE = "amount:maximum"


def obs(i: int, rate: float | None) -> Observation:
    """Window i (60 s windows from T0) with the rule's failure rate ``rate`` (None: the rule is not reported)."""
    rules = {} if rate is None else {RULE: RuleOutcome(int(rate * 1000), rate, rate == 0.0)}
    start = T0 + timedelta(minutes=i)
    return Observation("urn:test:payments", "payments", start, start + timedelta(minutes=1), "1.0.0", 1000,
                       rules=rules)  # fmt: skip


def book(contract: Contract) -> IncidentBook:
    # amount-out-of-range: above 0.01 for 2 windows; resolve below 0.005 for 2 windows; cooldown 10m
    return IncidentBook(tuple(p for p in parse_policies(contract) if p.name == "amount-out-of-range"))


def run(b: IncidentBook, windows: list[tuple[int, float | None]]) -> list[tuple[DecisionKind, int]]:
    out = []
    for i, rate in windows:
        out += [(d.kind, int((d.window_start - T0).total_seconds() // 60)) for d in b.observe(obs(i, rate))]
    return out


def test_a_missing_window_breaks_the_trigger_streak(contract: Contract) -> None:
    # windows 0 and 2 fail, window 1 never came (no records, no summary): `for: 2` means two consecutive windows
    # in event time, not two arrivals; windows 2 and 3 are consecutive and open it
    assert run(book(contract), [(0, 0.05), (2, 0.05)]) == []
    assert run(book(contract), [(0, 0.05), (2, 0.05), (3, 0.05)]) == [(DecisionKind.TRIGGERED, 3)]


def test_a_missing_window_breaks_the_run_of_clear_windows(contract: Contract) -> None:
    # open at 1; 2 is clear, 3 is missing (silence is not recovery), 4 clear: not two consecutive clear windows
    b = book(contract)
    assert run(b, [(0, 0.05), (1, 0.05), (2, 0.0), (4, 0.0)]) == [(DecisionKind.TRIGGERED, 1)]
    assert run(b, [(5, 0.0)]) == [(DecisionKind.RESOLVED, 5)]


def test_a_window_twice_or_late_decides_nothing_and_a_value_of_none_is_not_clear(contract: Contract) -> None:
    b = book(contract)
    assert run(b, [(0, 0.05), (0, 0.05), (1, 0.05), (1, 0.05), (0, 0.05)]) == [(DecisionKind.TRIGGERED, 1)]
    # the rule not reported (None) is neither holding nor clear; equality with a threshold is not beyond it
    assert run(b, [(2, 0.0), (3, None), (4, 0.0), (5, 0.005), (6, 0.0), (7, 0.0)]) == [(DecisionKind.RESOLVED, 7)]
    (state,) = b.states.values()
    assert state.replayed == 3


def test_a_manual_resolution_starts_the_cooldown_in_event_time_not_in_the_wall_clock(contract: Contract) -> None:
    # the stream is a day behind the wall clock (a backlog): resolved by hand "now", the 10-minute cooldown ran
    # from the wall clock, a day ahead of the windows, and suppressed a whole day of them
    b = book(contract)
    assert run(b, [(0, 0.05), (1, 0.05)]) == [(DecisionKind.TRIGGERED, 1)]
    (incident,) = b.open_incidents().values()
    (resolved,) = b.resolve(incident, T0 + timedelta(days=1), "ana")
    assert resolved.kind is DecisionKind.RESOLVED and resolved.how == "manual"
    assert resolved.window_end == T0 + timedelta(days=1)  # the resolution is stamped when it was asked for
    # cooldown until 12:12 (end of window 1 + 10m): window 11 (12:11-12:12) is the first not suppressed
    assert run(b, [(i, 0.05) for i in range(2, 12)]) == [(DecisionKind.TRIGGERED, 11)]
