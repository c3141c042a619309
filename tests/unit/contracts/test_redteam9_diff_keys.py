"""``contracts diff`` of a composite ``primaryKey`` (red team 9): its uniqueness rule is a schema rule over a tuple of
columns, which the diff read neither as a field's ``unique`` flag nor as a quality rule, so adding, removing or moving
a composite key was no change at all (a minor bump passed). Checked against the engine: a batch repeating a key passes
one version and fails the other."""

from __future__ import annotations

import polars as pl
import pytest

from streams.contracts.diff import ChangeKind, diff_contracts
from streams.contracts.loader import parse_contract

TEXT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:keys
version: {version}
status: active
schema:
  - name: orders
    properties:
      - {{name: a, logicalType: string, required: true{a}}}
      - {{name: b, logicalType: string, required: true{b}}}
      - {{name: c, logicalType: string, required: true{c}}}
"""
PK = ", primaryKey: true"


def contract(a: str = "", b: str = "", c: str = "", version: str = "1.0.0"):
    return parse_contract(TEXT.format(version=version, a=a, b=b, c=c), path=f"{version}.yaml")


def passes(contract_, rows: list[tuple[str, str, str]]) -> bool:
    frame = pl.DataFrame(rows, schema={"a": pl.String, "b": pl.String, "c": pl.String}, orient="row")
    return contract_.validate(frame).passed


REPEATED_AB = [("x", "y", "1"), ("x", "y", "2")]  # (a, b) repeated, (a, b, c) not


@pytest.mark.parametrize(
    ("old", "new", "witness", "producers", "consumers"),
    [
        (("", "", ""), (PK, PK, ""), REPEATED_AB, True, False),  # added
        ((PK, PK, ""), ("", "", ""), REPEATED_AB, False, True),  # removed
        ((PK, PK, PK), (PK, PK, ""), REPEATED_AB, True, False),  # over fewer columns: tighter
        ((PK, PK, ""), (PK, PK, PK), REPEATED_AB, False, True),  # over more columns: looser
        ((PK, PK, ""), ("", PK, PK), [("x", "y", "1"), ("z", "y", "1")], True, True),  # other columns: both
    ],
    ids=["added", "removed", "fewer-columns", "more-columns", "other-columns"],
)
def test_composite_primary_key_changes_are_classified(old, new, witness, producers, consumers) -> None:
    before, after = contract(*old), contract(*new, version="1.1.0")
    # the engine's own verdicts are the oracle: the witness batch passes the old version and fails the new one
    # where producers break, and the other way round where only consumers do
    assert passes(before, witness) is producers and passes(after, witness) is not producers
    diff = diff_contracts(before, after)
    kinds = {c.kind for c in diff.changes}
    assert kinds <= {ChangeKind.UNIQUE_ADDED, ChangeKind.UNIQUE_REMOVED}, diff.changes
    assert any(c.breaks_producers for c in diff.changes) is producers
    assert any(c.breaks_consumers for c in diff.changes) is consumers
    assert all(c.line is not None for c in diff.changes)
    assert not diff.semver().ok  # 1.0.0 -> 1.1.0 is a minor bump: a breaking change needs a major one


def test_reordered_key_and_a_unique_member_field_are_not_composite_key_changes() -> None:
    first = contract(f"{PK}, primaryKeyPosition: 1", f"{PK}, primaryKeyPosition: 2")
    swapped = contract(f"{PK}, primaryKeyPosition: 2", f"{PK}, primaryKeyPosition: 1", version="1.0.1")
    assert diff_contracts(first, swapped).changes == ()
    # (a, b) -> a alone: a unique a makes (a, b) unique, so only the tightening of a is reported
    single = diff_contracts(contract(PK, PK), contract(PK, version="2.0.0"))
    assert [(c.kind, c.subject) for c in single.changes] == [(ChangeKind.UNIQUE_ADDED, "a")]
