"""Bounds no value can lie within are ``file:line`` errors, as pandera refuses to build such checks.

Found by the third red-team pass (contract-level differential): ``minLength: 2`` with ``maxLength: 1``,
``Check.str_length(3, 1)`` or ``Check.in_range(5, 0)`` loaded and ran (failing every non-null value), while
``Contract.to_pandera()`` raised (pandera: "defines an empty interval"), so the reference could not run the
contract at all. The contract is contradictory: it is now refused where it is written. Well-formed bounds
(equal inclusive ones too) still load and compile to pandera.
"""

from __future__ import annotations

import pytest

from streams.contracts.loader import parse_contract
from streams.errors import ContractError


def _contract(option: str, check: str) -> str:
    return f"""
apiVersion: v3.1.0
kind: DataContract
id: urn:test:empty
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: s
        logicalType: string
        logicalTypeOptions: {{{option}}}
      - name: n
        logicalType: integer
        quality: [{{type: custom, engine: pandera, implementation: "{check}"}}]
"""


@pytest.mark.parametrize(
    ("option", "check", "line", "message"),
    [
        ("minLength: 2, maxLength: 1", "Check.in_range(0, 5)", 12, "minLength 2 is greater than maxLength 1"),
        ("maxLength: 3", "Check.in_range(5, 0)", 15, r"Check.in_range\(5, 0\) defines an empty interval"),
        ("maxLength: 3", "Check.between(1, 1, include_max=False)", 15, "empty interval"),
        ("maxLength: 3", "Check.str_length(3, 1)", 15, r"Check.str_length\(3, 1\) defines an empty interval"),
    ],
)
def test_empty_intervals_are_located_errors(option: str, check: str, line: int, message: str) -> None:
    with pytest.raises(ContractError, match=rf"t\.yaml:{line}: .*{message}"):
        parse_contract(_contract(option, check), path="t.yaml")


@pytest.mark.parametrize(
    ("option", "check"),
    [("minLength: 1, maxLength: 1", "Check.in_range(1, 1)"), ("minLength: 0", "Check.str_length(2, 2)")],
)
def test_tight_but_satisfiable_bounds_load_and_compile(option: str, check: str) -> None:
    c = parse_contract(_contract(option, check), path="t.yaml")
    assert c.to_pandera().columns["s"].checks
