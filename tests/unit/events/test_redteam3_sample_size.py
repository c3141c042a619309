"""Red-team pass 3: a ``rule.violation`` sample carries records' values, and a value can be as large as a record.

Found: 20 failure cases of a 2 MB string made a 40 MB event; the batch pipeline cut it down before sending (its
last resort for oversized outputs), but every consumer of the builder got the 40 MB, and the cut kept 1024
characters of each anyway. Failure cases are now cut at 1024 characters by the builder, with the
``…[truncated N bytes]`` marker.
"""

from __future__ import annotations

from streams.contracts.model import Severity
from streams.events import event_data, from_kafka, to_kafka, validate_event
from streams.events.types import MAX_CASE_CHARS
from tests.unit.events.test_events import _cases, _check, _contract, _fake, _violations


def test_huge_failure_cases_are_cut_and_the_event_stays_small() -> None:
    c = _contract()
    huge, small = "ü" * 1_000_000, "fax"
    cases = [(huge, "Column", "channel", "isin", i, "channel_known") for i in range(20)]
    report = _fake(c, (_check("channel_known", "channel", "isin", Severity.WARNING, 21),),
                   _cases([*cases, (small, "Column", "channel", "isin", 99, "channel_known")]))  # fmt: skip
    [event] = _violations(c, report, sample_size=21)
    key, value, headers = to_kafka(event)
    assert len(value) < 64_000  # was 40 MB
    decoded = from_kafka(key, value, headers)
    validate_event(decoded)
    sample = event_data(decoded)["sample"]
    assert [s["failure_case"] for s in sample[:2]] == [
        "ü" * MAX_CASE_CHARS + f"…[truncated {2 * (1_000_000 - MAX_CASE_CHARS)} bytes]"
    ] * 2
    assert sample[-1]["failure_case"] == small and len(sample) == 21
