"""Red team 11: hostile contract text found by a mutation fuzzer over valid contracts.

Each must be refused with ``ContractError`` at ``file:line`` (lint: a finding with its line), never a
``RecursionError``, ``ValueError`` or ``OverflowError`` from inside the loader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.contracts.loader import lint_contract, parse_contract
from streams.errors import ContractError

HEAD = """apiVersion: v3.1.0
kind: DataContract
id: urn:x
version: 1.0.0
status: draft
schema:
  - name: t
    properties:
      - name: a
        logicalType: integer
"""
RULE = "    quality:\n      - {type: library, metric: rowCount, %s}\n"

CASES = {
    # an alias inside the collection it names: PyYAML builds a cyclic list, the line index recursed forever
    "recursive_alias": ("a: &a [1, *a]\n" + HEAD, 1, "recursive"),
    "recursive_merge_key": ("a: &a {b: 1, <<: *a}\n" + HEAD, 1, "recursive"),
    "recursive_alias_deep_inside": (HEAD + "        description: &d [x, [y, *d]]\n", 11, "recursive"),
    # Python refuses to read an integer of more than 4,300 digits: an uncaught ValueError
    "integer_of_5000_digits": (HEAD + "        description: 1" + "0" * 5000 + "\n", 11, "digits"),
    # float() of a 400-digit integer: an uncaught OverflowError
    "threshold_beyond_float": (HEAD + RULE % ("mustBe: 1" + "0" * 400), 12, "beyond the range"),
    "threshold_between_beyond_float": (HEAD + RULE % ("mustBeBetween: [0, 1" + "0" * 400 + "]"), 12, "beyond"),
    # NaN thresholds: no count compares with NaN, the rule silently always failed
    "threshold_nan": (HEAD + RULE % "mustBeLessThan: .nan", 12, "NaN"),
    "threshold_between_nan": (HEAD + RULE % "mustBeBetween: [.nan, 5]", 12, "NaN"),
    # a control character: the reader's error has no mark; it was reported without a line (or as line 1)
    "nul_character_on_line_10": (HEAD.replace("integer", "integ\x00er"), 10, "U+0000"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_parse_refuses_with_file_and_line(name: str) -> None:
    text, line, words = CASES[name]
    with pytest.raises(ContractError) as caught:
        parse_contract(text, "c.yaml")
    assert (caught.value.path, caught.value.line) == ("c.yaml", line)
    assert words in caught.value.message


@pytest.mark.parametrize("name", sorted(CASES))
def test_lint_reports_a_finding_at_the_line(name: str, tmp_path: Path) -> None:
    text, line, words = CASES[name]
    path = tmp_path / "c.yaml"
    path.write_text(text, "utf-8")
    findings = [f for f in lint_contract(path) if not f.note]
    assert [(f.line, words in f.message) for f in findings[:1]] == [(line, True)]


def test_an_infinite_threshold_still_loads() -> None:
    contract = parse_contract(HEAD + RULE % "mustBeLessThan: .inf", "c.yaml")
    assert [r.threshold.value for r in contract.schemas[0].rules if r.name.endswith("rowCount")] == [float("inf")]


@pytest.mark.parametrize(
    ("logical", "option"),
    [
        ("integer", "minimum: .nan"),  # failed every row
        ("number", "exclusiveMaximum: .nan"),  # passed every row
        ("number", "multipleOf: .nan"),
        ("integer", "minimum: .inf"),  # no value is >= infinity: every row failed, lint said OK
        ("number", "maximum: -.inf"),
        ("number", "multipleOf: .inf"),
    ],
)
def test_bounds_no_value_compares_with_are_refused_at_their_line(logical: str, option: str) -> None:
    text = HEAD.replace("integer", logical) + f"        logicalTypeOptions: {{{option}}}\n"
    with pytest.raises(ContractError) as caught:
        parse_contract(text, "c.yaml")
    assert (caught.value.line, caught.value.message.split(" ")[0]) == (11, option.split(":", maxsplit=1)[0])


def test_a_vacuous_infinite_bound_still_loads() -> None:
    contract = parse_contract(HEAD + "        logicalTypeOptions: {maximum: .inf}\n", "c.yaml")
    assert [r.name for r in contract.schemas[0].rules] == ["a:dtype", "a:maximum"]
