"""ODCS ``pattern`` is JSON Schema's, an ECMA-262 regex: ``\\d`` is ``[0-9]``, ``\\w`` ``[0-9A-Za-z_]``.

Found by the earlier red-team passes (left over): the engine and pandera.polars run Rust's ``regex`` crate,
whose ``\\d`` ``\\w`` ``\\s`` ``\\b`` are Unicode-aware and whose ``.`` matches ``\\r``: ``^\\d{5}$``
accepted ``١٢٣٤٥`` (Arabic-Indic digits), ``^\\w+$`` accepted ``é``, ``\\s`` missed U+FEFF and matched U+0085.
Decision: a contract's ``pattern`` (``logicalTypeOptions.pattern``, ``invalidValues``'s
``arguments.pattern``) means what JSON Schema says; it is rewritten as the Rust regex matching the same
text (:mod:`streams.contracts.patterns`), which the engine and the compiled pandera schema both run, so
they still agree row by row; the label keeps the pattern as written. ``Check.str_matches`` (pandera's
own API) keeps Rust's meaning.

The independent computation: Python's ``re`` with ``re.ASCII`` (whose ``\\d`` ``\\w`` ``\\b`` are ECMA's),
and ECMA-262's list of white space and line terminators. (Measured against node's ``RegExp(p, 'u')`` on 61
patterns x 460 strings: 0 mismatches, 3,990 before; ``/tmp`` harness, not a test dependency.)
"""

from __future__ import annotations

import re

import polars as pl
import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.patterns import ecma_to_rust

# ECMA-262 WhiteSpace and LineTerminator code points (\s)
ECMA_SPACE = set("\t\n\x0b\x0c\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff") | {
    chr(c) for c in range(0x2000, 0x200B)
}
STRINGS = ["12345", "١٢٣٤٥", "1234５", "abc_9", "é", "ǅx", "a b", "a\u0085b", "a\ufeffb", "a\u00a0b", "a\rb", "a\nb",
           "éb", "b", "ab", "x\u2028y", "", "a.b", "A-Z"]  # fmt: skip


def _contract(pattern: str, where: str) -> str:
    option = f"logicalTypeOptions: {{pattern: '{pattern}'}}" if where == "option" else ""
    quality = (
        f"quality: [{{type: library, metric: invalidValues, arguments: {{pattern: '{pattern}'}}, mustBe: 0}}]"
        if where == "quality"
        else ""
    )
    return f"""
apiVersion: v3.1.0
kind: DataContract
id: urn:test:ecma
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: s
        logicalType: string
        {option}
        {quality}
      - name: n
        logicalType: integer
"""


SPACE = "".join(sorted(ECMA_SPACE))
DOT = "[^\n\r\u2028\u2029]"
#: ECMA-262 pattern -> the same in Python's ``re.ASCII`` (whose \d \w \b are ECMA's; \s and . spelled out)
PATTERNS = {
    r"^\d{5}$": r"^\d{5}$",
    r"^\w+$": r"^\w+$",
    r"\s": f"[{SPACE}]",
    r"^\S+$": f"^[^{SPACE}]+$",
    r"\bb": r"\bb",
    r"^a.b$": f"^a{DOT}b$",
    r"^[\d\s]+$": f"^[\\d{SPACE}]+$",
    r"^[^\w]$": r"^[^\w]$",
}


def _oracle(pattern: str, s: str) -> bool:
    return re.search(PATTERNS[pattern], s, re.ASCII) is not None


@pytest.mark.parametrize("where", ["option", "quality"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_patterns_judge_as_json_schema(pattern: str, where: str) -> None:
    c = parse_contract(_contract(pattern, where), path="t.yaml")
    df = pl.DataFrame({"s": STRINGS, "n": list(range(len(STRINGS)))})
    report = c.validate(df)
    ours = sorted(int(i) for i in report.failure_cases.filter(pl.col("column") == "s")["index"].to_list())
    expected = [i for i, s in enumerate(STRINGS) if not _oracle(pattern, s)]
    assert ours == expected
    with pytest.raises(Exception) as info:
        c.to_pandera().validate(df, lazy=True)
    cases = info.value.failure_cases  # type: ignore[attr-defined]
    assert sorted(cases["index"].to_list()) == expected
    assert set(cases["check"].to_list()) == {f"str_contains('{pattern}')"} == {k.check for k in report.failed_checks()}


def test_digits_are_ascii() -> None:
    c = parse_contract(_contract(r"^\d{5}$", "option"), path="t.yaml")
    report = c.validate(pl.DataFrame({"s": ["12345", "١٢٣٤٥"], "n": [1, 2]}))
    assert report.failure_cases["index"].to_list() == [1]


def test_escapes_rust_spells_otherwise() -> None:
    """``\\u00e9``, ``\\cJ``, ``[\\b]``, ``[[]`` and ``[a&&b]`` are ECMA text Rust reads otherwise (or refuses)."""
    cases = {r"^\u00e9$": ["é"], r"^\cJ$": ["\n"], r"^[\b]$": ["\x08"], r"^[[]$": ["["], r"^[a&&b]+$": ["a&b", "&&"]}
    for pattern, matching in cases.items():
        rust = ecma_to_rust(pattern)
        got = pl.Series([*matching, "x"]).str.contains(rust).to_list()
        assert got == [True] * len(matching) + [False], (pattern, rust)


def test_pandera_checks_keep_rust_semantics() -> None:
    """``Check.str_contains`` is pandera's API: its regex is pandera's (Rust), not rewritten."""
    text = _contract("x", "none").replace(
        "logicalType: string\n",
        "logicalType: string\n        quality: [{type: custom, engine: pandera, "
        "implementation: \"Check.str_matches(r'^\\\\d+$')\"}]\n",
        1,
    )
    [rule] = [r for r in parse_contract(text, path="t.yaml").schema().rules if r.op.value == "str_matches"]
    assert rule.args == (r"^\d+$",)
