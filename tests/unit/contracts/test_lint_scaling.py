"""``qstreams contracts lint`` costs time linear in the number of properties and rules, with the same findings.

Its dry run ran every rule of a schema object on one frame of every column, and the engine's work per rule
(probing a rule, counting the duplicates of a ``unique`` property) carries the whole frame: quadratic (0.6 /
1.5 / 5 s at 1,000 / 2,000 / 4,000 properties). Its authoring check scanned every rule once per property.
The counts here are not times: the columns of the frames polars is handed (``select``, ``with_columns``,
``filter``) during the dry run, and the rules the authoring check reads, for N and 4N properties. The findings
are compared with a run of every rule on every column (what lint did) on the shipped contracts and on wide
contracts full of rules the engine cannot run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from streams import lint
from streams.contracts.loader import load_contract, parse_contract
from streams.contracts.model import Contract

ROOT = Path(__file__).resolve().parents[3]

#: rules the engine cannot run (from test_lint_dry_run), for the columns of group ``{i}``
BAD = [
    '{{type: custom, engine: pandera, implementation: "Check.greater_than(5)"}}',
    "{{type: custom, engine: expression, implementation: 'email{i} > 3'}}",
    "{{type: sql, query: 'SELECT MAX(email{i}) FROM orders', mustBe: 0}}",
    "{{type: sql, query: 'SELECT COUNT(*) FROM orders WHERE email{i} > 5', mustBe: 0}}",
    "{{type: custom, engine: expression, implementation: 'amount{i} + n0 > 3 and code0 > at{i}'}}",
]
#: rules that run (one reads a column of the first group, far from its own)
GOOD = [
    "{{type: custom, engine: expression, implementation: 'amount{i} >= 0 and n0 <= 3'}}",
    "{{type: sql, query: 'SELECT COUNT(*) FROM orders WHERE n{i} + n0 < 0', mustBe: 0}}",
    '{{type: library, metric: invalidValues, arguments: {{validValues: ["a", "b"]}}, mustBe: 0}}',
]


def _wide(groups: int, bad: bool) -> str:
    """A contract of ``groups`` x 5 properties; with ``bad``, a rule the engine cannot run on every group."""
    lines = ["apiVersion: v3.1.0", "kind: DataContract", "id: urn:test:wide", "version: 1.0.0", "status: draft",
             "schema:", "  - name: orders", "    properties:"]  # fmt: skip
    for i in range(groups):
        lines += [f"      - {{name: amount{i}, logicalType: number}}",
                  f"      - {{name: n{i}, logicalType: integer, unique: true}}",
                  f"      - {{name: email{i}, logicalType: string, logicalTypeOptions: {{pattern: '^[a-z]+$'}}}}",
                  f"      - {{name: at{i}, logicalType: timestamp, logicalTypeOptions: {{timezone: true}}}}",
                  f"      - name: code{i}", "        logicalType: string", "        quality:"]  # fmt: skip
        rules = [GOOD[i % len(GOOD)]] + ([BAD[i % len(BAD)]] if bad else [])
        lines += ["          - " + r.format(i=i) for r in rules]
    lines += ["    quality:",
              "      - {type: library, metric: rowCount, mustBeGreaterThan: 0}",
              "      - {type: library, metric: duplicateValues, arguments: {properties: [n0, email0]}, mustBe: 0}",
              f"      - {{type: custom, engine: expression, implementation: 'n0 <= n{groups - 1}'}}"]  # fmt: skip
    if bad:
        lines.append(f"      - {{type: sql, query: 'SELECT MAX(email{groups - 1}) FROM orders', mustBe: 0}}")
    return "\n".join(lines) + "\n"


def _whole(contract: Contract) -> list[Any]:
    """What lint's dry run gave before: every rule of each schema object run on one frame of every column."""
    return [f for schema in contract.schemas for f in lint._findings(contract, schema)]


@pytest.mark.parametrize(("groups", "bad"), [(4, True), (40, True), (40, False)])
def test_the_dry_run_finds_what_a_run_on_every_column_finds(tmp_path: Path, groups: int, bad: bool) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text(_wide(groups, bad))
    contract = load_contract(path)
    found = lint.dry_run(contract)
    assert [str(f) for f in found] == [str(f) for f in _whole(contract)]
    # every group's bad rule and the schema-level one, each at its own line
    expected = groups + 1 if bad else 0
    assert len(found) == expected, [str(f) for f in found]
    assert len({f.line for f in found}) == expected


def test_the_shipped_contracts_lint_as_before() -> None:
    paths = sorted((ROOT / "contracts").glob("*.yaml"))
    assert paths
    for path in paths:
        contract = load_contract(path)
        assert lint.dry_run(contract) == _whole(contract) == []


def test_parts_hold_every_rule_once_with_the_columns_it_reads() -> None:
    schema = parse_contract(_wide(40, True)).schema()
    parts = lint._parts(schema)
    assert len(parts) > 2
    placed = Counter(r for p in parts for r in p.rules)
    assert placed == Counter(schema.rules)
    for part in parts:
        names = set(part.columns)
        for rule in part.rules:
            read = lint._reads(rule, schema.name)
            assert (read is None and len(names) == len(schema.fields)) or (read is not None and read <= names)
    assert {f for p in parts for f in p.fields} == set(schema.fields)


@pytest.fixture
def widths(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """The columns of the frames handed to polars' select, with_columns and filter (summed per method)."""
    seen: Counter[str] = Counter()
    for name in ("select", "with_columns", "filter"):
        method = getattr(pl.DataFrame, name)

        def counted(df: pl.DataFrame, *args: Any, __method: Any = method, __name: str = name, **kw: Any) -> Any:
            seen[__name] += df.width
            return __method(df, *args, **kw)

        monkeypatch.setattr(pl.DataFrame, name, counted)
    yield seen


def _columns_handled(groups: int, bad: bool, seen: Counter[str]) -> int:
    contract = parse_contract(_wide(groups, bad))
    seen.clear()
    lint.dry_run(contract)
    return sum(seen.values())


@pytest.mark.parametrize("bad", [False, True])
def test_the_dry_run_is_linear_in_the_number_of_properties(widths: Counter[str], bad: bool) -> None:
    small, large = _columns_handled(20, bad, widths), _columns_handled(80, bad, widths)
    assert small > 0
    # 4x the properties and rules: about 4x the columns handled (4.4x here; on one frame of every column, 15x)
    assert large < 6 * small, (small, large)


def test_authoring_reads_each_rule_once(monkeypatch: pytest.MonkeyPatch) -> None:
    def reads(groups: int) -> int:
        text = _wide(groups, False).replace(
            "{name: amount", "{logicalTypeOptions: {minimum: 5, maximum: 1}, name: amount"
        )
        contract = parse_contract(text)
        count = 0
        schema = contract.schemas[0]

        class Counted(tuple):  # type: ignore[type-arg]
            def __iter__(self) -> Iterator[Any]:
                nonlocal count
                for r in tuple.__iter__(self):
                    count += 1
                    yield r

        found = lint.authoring_findings(replace(contract, schemas=(replace(schema, rules=Counted(schema.rules)),)))
        assert len(found) == groups  # the swapped bounds of every amount property
        return count

    small, large = reads(20), reads(80)
    assert small > 0 and large <= 4 * small, (small, large)
