"""``contracts diff`` of a property with two bounds on one side (red team 9): ODCS v3.1 lets ``minimum`` and
``exclusiveMinimum`` (or ``maximum`` and ``exclusiveMaximum``) both be numbers, and the engine checks both; the
diff kept only the last one read, so adding or dropping the tighter of the two was no change (a patch bump passed)
or the wrong direction. Checked against the engine's verdicts on a witness value."""

from __future__ import annotations

import polars as pl
import pytest

from streams.contracts.diff import ChangeKind, diff_contracts
from streams.contracts.loader import parse_contract

TEXT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:bounds
version: {version}
status: active
schema:
  - name: orders
    properties:
      - {{name: amount, logicalType: number, logicalTypeOptions: {{{options}}}}}
"""


def contract(options: str, version: str = "1.0.0"):
    return parse_contract(TEXT.format(version=version, options=options), path=f"{version}.yaml")


def passes(contract_, value: float) -> bool:
    return contract_.validate(pl.DataFrame({"amount": [value]})).passed


@pytest.mark.parametrize(
    ("old", "new", "witness", "kind"),
    [
        ("exclusiveMinimum: 5", "minimum: 10, exclusiveMinimum: 5", 7.0, ChangeKind.RANGE_TIGHTENED),
        ("minimum: 10, exclusiveMinimum: 5", "exclusiveMinimum: 5", 7.0, ChangeKind.RANGE_LOOSENED),
        ("maximum: 50, exclusiveMaximum: 100", "exclusiveMaximum: 100", 99.5, ChangeKind.RANGE_LOOSENED),
        ("exclusiveMaximum: 100", "exclusiveMaximum: 100, maximum: 50", 99.5, ChangeKind.RANGE_TIGHTENED),
        ("minimum: 5, exclusiveMinimum: 5", "minimum: 5", 5.0, ChangeKind.RANGE_LOOSENED),
    ],
)
def test_the_tighter_of_two_bounds_on_one_side_is_compared(old: str, new: str, witness: float, kind: ChangeKind):
    before, after = contract(old), contract(new, "1.0.1")
    tightened = kind is ChangeKind.RANGE_TIGHTENED
    assert passes(before, witness) is tightened and passes(after, witness) is not tightened  # the engine's verdicts
    diff = diff_contracts(before, after)
    assert [c.kind for c in diff.changes] == [kind], diff.changes
    (change,) = diff.changes
    assert (change.breaks_producers, change.breaks_consumers) == (tightened, not tightened)
    assert not diff.semver().ok  # a patch bump does not cover a breaking change


def test_a_looser_second_bound_changes_nothing() -> None:
    diff = diff_contracts(contract("minimum: 10"), contract("minimum: 10, exclusiveMinimum: 5", "1.0.1"))
    assert diff.changes == () and diff.semver().ok
    assert diff.old.validate(pl.DataFrame({"amount": [7.0]})).passed is False  # both refuse 7: the same set
    assert diff.new.validate(pl.DataFrame({"amount": [7.0]})).passed is False
