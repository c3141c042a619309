"""A SQL rule's regex match (``~``) reads ``\\d`` and ``\\w`` as DuckDB (RE2) does: ASCII.

Found by red team 10 (DuckDB as the oracle): the query runs on polars, whose Rust regex reads ``\\d`` as any
Unicode digit and ``\\w`` as any Unicode word character, so ``code ~ '^\\d{5}$'`` counted Arabic-Indic digits as a
postal code where DuckDB (and the rule's author) do not; ODCS ``pattern`` had the same problem (ECMA-262). A SQL
pattern is RE2 and is rewritten as such (``re2_to_rust``; the same text when the checked query is checked again).
The expected counts are Python's ``re`` with ``re.ASCII``, which reads these classes as RE2 does.
"""

from __future__ import annotations

import re

import polars as pl
import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.patterns import re2_to_rust

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:sql-regex
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - {name: code, logicalType: string}
    quality:
      - {name: digits, type: sql, query: "SELECT COUNT(*) FROM t WHERE code ~ '^\\\\d{5}$'", mustBe: 2}
      - {name: words, type: sql, query: "SELECT COUNT(*) FROM t WHERE code ~ '^\\\\w+$'", mustBe: 3}
"""
CODES = ["12345", "١٢٣٤٥", "99999", "éa", "ab_1", None]


def test_sql_regex_classes_are_ascii() -> None:
    c = parse_contract(CONTRACT, path="c.yaml")
    report = c.validate(pl.DataFrame({"code": pl.Series(CODES, dtype=pl.String)}))
    for name, pattern in (("digits", r"^\d{5}$"), ("words", r"^\w+$")):
        expected = sum(1 for v in CODES if v is not None and re.search(pattern, v, re.ASCII))
        check = report.check(name)
        assert check.error is None, check.error
        assert check.value == expected


@pytest.mark.parametrize("pattern", [r"^\d{5}$", r"[\w-]+", r"a\sb", r"\bfoo\b", r"[]\d]", r"[[:alpha:]\d]", r"\\d"])
def test_the_rewrite_reads_the_same_when_checked_again(pattern: str) -> None:
    once = re2_to_rust(pattern)
    assert re2_to_rust(once) == once
