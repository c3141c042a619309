"""The incident state machine against an independent one written here from docs/policies.md (trigger on ``for``
consecutive windows strictly above, resolve after ``resolve.after`` windows strictly below the clear threshold,
a gap breaks both runs, a window starting before the end of the last one taken is a replay, cooldown in event time
from the resolving window's end, inclusive), over random window sequences with redeliveries of a window (with
another value), late old windows, gaps and values at the thresholds."""

from __future__ import annotations

import datetime as dt
import random

from streams.contracts.model import Contract
from streams.policies import IncidentBook, Observation, RuleOutcome, parse_policies

T0 = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
VALUES = (0.0, 0.004, 0.005, 0.006, 0.01, 0.0100001, 0.02)  # around below 0.005 and above 0.01


def _oracle(sequence: list[tuple[int, float]]) -> list[tuple[str, int]]:
    """amount-out-of-range: above 0.01 for 2, resolve after 2 below 0.005, cooldown 10 minutes."""
    last_end, streak, clear, open_, cool, out = None, 0, 0, False, None, []
    for i, value in sequence:
        start, end = T0 + i * MINUTE, T0 + (i + 1) * MINUTE
        if last_end is not None and start < last_end:
            continue  # a replay or a late window
        if last_end is not None and start > last_end:
            streak = clear = 0  # a gap
        last_end = end
        if open_:
            clear = clear + 1 if value < 0.005 else 0
            if clear >= 2:
                open_, clear, streak, cool = False, 0, 0, end + dt.timedelta(minutes=10)
                out.append(("resolved", i))
            continue
        streak = streak + 1 if value > 0.01 else 0
        if streak >= 2 and (cool is None or end >= cool):
            open_, clear = True, 0
            out.append(("triggered", i))
    return out


def test_decisions_equal_an_independent_state_machine(contract: Contract) -> None:
    policies = [p for p in parse_policies(contract) if p.name == "amount-out-of-range"]
    rng = random.Random(8)
    decided = 0
    for _ in range(600):
        sequence, i = [], 0
        for _ in range(rng.randrange(5, 60)):
            i += rng.randrange(2, 4) if rng.random() < 0.1 else 0
            sequence.append((i, rng.choice(VALUES)))
            if rng.random() < 0.15:
                sequence.append((i, rng.choice((0.0, 0.02))))  # the window delivered again, another value
            if rng.random() < 0.1 and i > 3:
                sequence.append((i - rng.randrange(1, 3), 0.02))  # an older window, late
            i += 1
        book, got = IncidentBook(policies), []
        for j, value in sequence:
            start = T0 + j * MINUTE
            rules = {"amount:maximum": RuleOutcome(round(value * 1000), value, value == 0)}
            observation = Observation(contract.id, "payments", start, start + MINUTE, contract.version, 1000,
                                      rules=rules)  # fmt: skip
            got += [(str(d.kind), (d.window_start - T0) // MINUTE) for d in book.observe(observation)]
        assert got == _oracle(sequence), sequence
        decided += len(got)
    assert decided > 100  # the sequences did decide
