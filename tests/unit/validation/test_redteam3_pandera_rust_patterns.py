"""``to_pandera()`` builds contracts whose patterns are Rust regex syntax Python's ``re`` does not know.

Found by the third red-team pass: pandera's ``Check.str_contains`` / ``Check.str_matches`` vet the pattern
with Python's ``re.compile`` (then run polars' Rust regex), so ``pattern: '^\\p{L}+$'`` (which
docs/semantics.md documents as working), ``\\x{…}`` or class intersections made ``Contract.to_pandera()``
raise ``re.error`` (not even a ``ContractError``) on a contract the engine runs. The schema now holds
pandera's same built-in check without the Python vetting. The independent computation: Python's
``unicodedata`` categories (``\\p{L}`` = a letter) and a plain loop.
"""

from __future__ import annotations

import unicodedata

import polars as pl
import pytest
from pandera.errors import SchemaErrors

from streams.contracts.loader import parse_contract
from streams.validation.pandera import from_pandera

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:rust-patterns
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - {name: s, logicalType: string, logicalTypeOptions: {pattern: '^\\p{L}+$'}}
      - name: u
        logicalType: string
        quality: [{type: custom, engine: pandera, implementation: "Check.str_contains('[a-z&&[^aeiou]]')"}]
      - {name: n, logicalType: integer}
"""

S = ["abc", "été", "a1", "ж", "", "a b", None]
U = ["xyz", "aei", "b", "ab", None, "E", "oo"]


def _letters(v: str) -> bool:
    return bool(v) and all(unicodedata.category(c).startswith("L") for c in v)


def _expected() -> set[tuple[str, int]]:
    letters = {("s", i) for i, v in enumerate(S) if v is not None and not _letters(v)}
    consonants = {("u", i) for i, v in enumerate(U) if v is not None and not set(v) & set("bcdfghjklmnpqrstvwxyz")}
    return letters | consonants


def test_to_pandera_runs_rust_patterns_as_the_engine() -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    df = pl.DataFrame({"s": S, "u": U, "n": list(range(len(S)))})
    report = c.validate(df)
    ours = {(col, int(i)) for col, i in report.failure_cases.select("column", "index").iter_rows()}
    with pytest.raises(SchemaErrors) as info:
        c.to_pandera().validate(df, lazy=True)
    cases = info.value.failure_cases
    theirs = {(col, int(i)) for col, i in cases.select("column", "index").iter_rows()}
    assert ours == theirs == _expected() == {("s", 2), ("s", 4), ("s", 5), ("u", 1), ("u", 5), ("u", 6)}
    assert sorted(set(cases["check"].to_list())) == sorted({k.check for k in report.failed_checks()})


def test_the_schema_reads_back() -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    back = from_pandera(c.to_pandera(), contract_id="x", version="1").schema()
    wanted = {(r.column, r.op, r.args) for r in c.schema().rules if r.op.value.startswith("str_")}
    assert {(r.column, r.op, r.args) for r in back.rules if r.op.value.startswith("str_")} == wanted
