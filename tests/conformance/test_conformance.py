"""ODCS conformance against material nobody here wrote: the standard's examples and datacontract-cli's fixtures.

The corpus lives outside the project (``shared/odcs-conformance/``, public files with their provenance in
``corpus-manifest.json``); it is read from there, never copied. Set ``QSTREAMS_CONFORMANCE_DIR`` or keep a
``shared/odcs-conformance`` directory in an ancestor of this checkout; without it these tests skip.

* Every example the standard marks valid lints, or is refused only with precise ``not supported: ...``
  findings (objects without properties, arrays of objects, the ``soda`` custom engine): exactly those of
  :data:`EXPECTED_REFUSED`. Nested objects with properties run, as fields named by their dotted path.
* Where datacontract-cli evaluated a rule that we evaluate too, the verdicts (pass / fail / warn / error)
  agree, except the differences listed in :data:`KNOWN_DIFFERENCES`, each with its reason (see
  docs/semantics.md).

Figures: ``python tests/conformance/test_conformance.py`` prints them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.loader import load_contract
from streams.contracts.model import Op, Rule, Severity
from streams.lint import lint_file

_ENV = "QSTREAMS_CONFORMANCE_DIR"


def conformance_dir() -> Path | None:
    env = os.environ.get(_ENV)
    if env:
        return Path(env) if (Path(env) / "corpus-manifest.json").is_file() else None
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "odcs-conformance"
        if (candidate / "corpus-manifest.json").is_file():
            return candidate
    return None


CORPUS = conformance_dir()
pytestmark = pytest.mark.skipif(
    CORPUS is None,
    reason=f"the ODCS conformance corpus is not available (set {_ENV} or provide shared/odcs-conformance/)",
)


def _manifest() -> dict[str, Any]:
    if CORPUS is None:
        return {"examples": [], "dcc_files": []}
    return json.loads((CORPUS / "corpus-manifest.json").read_text())  # type: ignore[no-any-return]


def _verdicts() -> dict[str, Any]:
    if CORPUS is None:
        return {}
    return json.loads((CORPUS / "dcc-verdicts.json").read_text())["cases"]  # type: ignore[no-any-return]


EXAMPLES = [e["file"] for e in _manifest()["examples"]]

#: The corpus is linted with ``allow_unowned``: ownership (issue 12: a contract in use names an owner and a
#: support channel) is our governance rule, not ODCS's; the standard's examples illustrate constructs and
#: only ``full-example`` names an owner and a support channel. The rule itself is checked on them below.
ALLOW_UNOWNED_REASON = "ODCS does not require an owner; the examples illustrate constructs, not governed contracts"

#: example -> the start of its first refusal. Nested objects with `properties` run (flattened to dotted
#: paths); adventureworks' `object`s have no properties (they are PostgreSQL domain types, `Name`, `Flag`):
#: nothing in them to check, and their values are not objects, so they stay refused.
EXPECTED_REFUSED: dict[str, str] = {
    "odcs-examples/all/postgresql-adventureworks-contract.odcs.yaml": (
        "not supported: logicalType 'object' without `properties` ('name'"
    ),
    "odcs-examples/data-types/all-data-types.odcs.yaml": (
        "not supported: logicalType 'object' without `properties` ('customer_details'"
    ),
    "odcs-examples/quality/column-custom.odcs.yaml": "not supported: custom engine 'soda'",
    "odcs-examples/schema/all-schema-types.odcs.yaml": "not supported: an array of objects",
}

#: (case, rule) -> why our verdict differs from datacontract-cli's on purpose (see docs/semantics.md).
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}
#: case -> (our overall `passed`, why it differs from datacontract-cli's overall result on purpose).
KNOWN_OVERALL_DIFFERENCES: dict[str, tuple[bool, str]] = {
    "nested-invalid-logical-types": (
        False,
        "the fixture declares integer for a Parquet struct's string and boolean fields and List(string) for a "
        "list of int64: we check types (nested fields by path), datacontract-cli skips Parquet types (warning)",
    ),
}
#: (case, rule) -> why the measured value may differ while the verdict agrees. None since the value of
#: a uniqueness rule is ODCS's duplicateValues, rows - distinct, as datacontract-cli measures it.
KNOWN_VALUE_DIFFERENCES: dict[tuple[str, str], str] = {}


# --- the standard's examples -----------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES or ["<none>"])
def test_every_valid_standard_example_lints_or_is_refused_precisely(example: str) -> None:
    assert CORPUS is not None and example != "<none>", "the manifest lists no examples"
    findings = lint_file(CORPUS / example, allow_unowned=True)  # ALLOW_UNOWNED_REASON
    problems = [f for f in findings if not f.note]
    for f in problems:
        assert f.message.startswith("not supported: "), f"{example}: {f}"
        assert f.line is not None and f.line > 1, f"{example}: {f} (no precise line)"


def test_most_standard_examples_lint_clean() -> None:
    summary = example_summary()
    assert summary["total"] == len(EXAMPLES) == 18
    assert set(summary["refused"]) == set(EXPECTED_REFUSED), summary["refused"]
    for example, start in EXPECTED_REFUSED.items():
        assert summary["refused"][example].startswith(start), (example, summary["refused"][example])
    # the refusals are nested objects/arrays and a third-party custom engine: all others must lint
    assert summary["clean"] >= 13, summary


def test_ownership_on_the_standard_examples() -> None:
    """Without --allow-unowned, the examples that lint clean fail only for a missing owner and support
    channel, with the line of `team`/`support` or else `status`; full-example (a team with an Owner member
    and support channels) passes, and documents without schema objects bind nothing and are not checked."""
    assert CORPUS is not None
    unowned, owned = [], []
    for example in EXAMPLES:
        relaxed = [f for f in lint_file(CORPUS / example, allow_unowned=True) if not f.note]
        if relaxed:
            continue
        strict = [f for f in lint_file(CORPUS / example) if not f.note]
        (unowned if strict else owned).append(example)
        for f in strict:
            assert "names no owner" in f.message or "names no support channel" in f.message, f
            assert f.line is not None and f.line > 1
    assert "odcs-examples/all/full-example.odcs.yaml" in owned
    assert len(unowned) == 9, unowned
    assert len(owned) == 5, owned


@cache
def example_summary() -> dict[str, Any]:
    assert CORPUS is not None
    clean, refused = [], {}
    for example in EXAMPLES:
        problems = [f for f in lint_file(CORPUS / example, allow_unowned=True) if not f.note]
        if problems:
            refused[example] = problems[0].message.split(";")[0]
        else:
            clean.append(example)
    return {"total": len(EXAMPLES), "clean": len(clean), "refused": refused}


# --- datacontract-cli's verdicts ---------------------------------------------------------------------


@dataclass
class CaseResult:
    refused: str | None = None  # our lint's first problem when we refuse the contract
    compared: dict[str, tuple[str, str]] = field(default_factory=dict)  # rule -> (theirs, ours)
    not_evaluated: list[str] = field(default_factory=list)  # rules they evaluate and we do not (or they skip)
    values: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # rule -> (their value, ours)
    overall: tuple[str, bool] | None = None  # (their result, our `passed`)


def _key(rule: Rule) -> str | None:
    """datacontract-cli's name for one of our rules (``column:kind``), or None when it has none."""
    col = rule.column or ""
    if rule.op is Op.DTYPE:
        return f"{col}:type"
    if rule.source == "schema":
        return {Op.NOT_NULL: f"{col}:required", Op.UNIQUE: f"{col}:unique"}.get(rule.op)
    if rule.source == "logicalTypeOptions":
        return rule.name
    if rule.source == "sql":
        return ":sql"
    kinds = {
        Op.NOT_NULL: "nullValues",
        Op.UNIQUE: "duplicateValues",
        Op.ISIN: "invalidValues",
        Op.STR_CONTAINS: "invalidValues",
        Op.MISSING: "missingValues",
        Op.ROW_COUNT: "rowCount",
    }
    return f"{col}:{kinds[rule.op]}" if rule.op in kinds else None


def _ours(check: dict[str, Any]) -> str:
    if check.get("error"):
        return "error"
    if check["passed"]:
        return "pass"
    return "warn" if check["severity"] in (Severity.WARNING, Severity.INFO) else "fail"


@cache
def dcc_case(name: str) -> CaseResult:
    assert CORPUS is not None
    case = _verdicts()[name]
    contract_path = CORPUS / case["contract"]
    problems = [f for f in lint_file(contract_path, allow_unowned=True) if not f.note]
    if problems:
        return CaseResult(refused=f"line {problems[0].line}: {problems[0].message}")
    contract = load_contract(contract_path)
    res = CliRunner().invoke(
        app, ["validate", str(CORPUS / case["data"]), "--contract", str(contract_path), "--format", "json"]
    )
    assert res.exit_code in (0, 1), res.output
    report = json.loads(res.stdout)
    rules = {r.name: r for s in contract.schemas for r in s.rules}
    ours: dict[str, str] = {}
    values: dict[str, Any] = {}
    for check in report["checks"]:
        key = _key(rules[check["name"]])
        if key is not None:
            ours[key] = _ours(check)
            values[key] = check["value"]
    out = CaseResult(overall=(case["result"], report["passed"]))
    for rule, verdict in case["rules"].items():
        theirs = verdict["verdict"]
        mine = ours.get(rule.replace(":present", ":type"))
        if theirs == "skip" or mine is None:
            out.not_evaluated.append(rule)
        else:
            out.compared[rule] = (theirs, mine)
            if verdict["value"] is not None:
                out.values[rule] = (verdict["value"], values[rule.replace(":present", ":type")])
    return out


CASES = sorted(_verdicts())


@pytest.mark.parametrize("case", CASES or ["<none>"])
def test_verdicts_agree_with_datacontract_cli_where_both_evaluate(case: str) -> None:
    assert case != "<none>", "dcc-verdicts.json lists no cases"
    result = dcc_case(case)
    for rule, (theirs, mine) in result.compared.items():
        if (case, rule) in KNOWN_DIFFERENCES:
            continue
        assert theirs == mine, f"{case} {rule}: datacontract-cli says {theirs}, we say {mine}"
    for rule, (their_value, our_value) in result.values.items():
        if (case, rule) in KNOWN_VALUE_DIFFERENCES:
            continue
        assert their_value == pytest.approx(our_value), f"{case} {rule}: measured {their_value} vs ours {our_value}"
    if result.overall is not None and case in KNOWN_OVERALL_DIFFERENCES:
        assert result.overall[1] is KNOWN_OVERALL_DIFFERENCES[case][0], (case, result.overall)
    elif result.overall is not None:
        theirs_overall, ours_passed = result.overall
        assert (theirs_overall in ("passed", "warning")) == ours_passed, f"{case}: {theirs_overall} vs {ours_passed}"
    else:
        assert result.refused, case


def test_most_fixture_rules_are_compared() -> None:
    compared = sum(len(dcc_case(c).compared) for c in CASES)
    assert compared >= 40, compared


def dcc_summary() -> dict[str, Any]:
    results = {c: dcc_case(c) for c in CASES}
    pairs = [(c, r, t, m) for c, res in results.items() for r, (t, m) in res.compared.items()]
    return {
        "cases": len(CASES),
        "refused": {c: r.refused for c, r in results.items() if r.refused},
        "compared": len(pairs),
        "agree": sum(t == m for _, _, t, m in pairs),
        "differ": [(c, r, t, m) for c, r, t, m in pairs if t != m],
        "not_evaluated": {c: r.not_evaluated for c, r in results.items() if r.not_evaluated},
        "values_compared": sum(len(r.values) for r in results.values()),
        "values_equal": sum(t == m for r in results.values() for t, m in r.values.values()),
        "values_differ": {f"{c} {k}": v for c, r in results.items() for k, v in r.values.items() if v[0] != v[1]},
        "overall": {c: r.overall for c, r in results.items() if r.overall},
    }


if __name__ == "__main__":
    if CORPUS is None:
        raise SystemExit(f"no conformance corpus (set {_ENV})")
    print(json.dumps({"examples": example_summary(), "datacontract-cli": dcc_summary()}, indent=1, default=str))
