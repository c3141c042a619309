"""``contracts diff``: each kind of change classified for producers and consumers, on a table of version pairs."""

from __future__ import annotations

import polars as pl
import pytest

from streams.contracts.compare import Relation, threshold_relation, type_relation
from streams.contracts.diff import ChangeKind, diff_contracts
from streams.contracts.loader import parse_contract
from streams.contracts.model import Threshold, Unit
from streams.contracts.semver import Bump, check_bump, parse_version

BASE = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:orders
version: 1.2.3
status: active
team: {name: shop}
schema:
  - name: orders
    physicalName: shop.orders.v1
    properties:
      - name: id
        logicalType: string
        required: true
        logicalTypeOptions: {pattern: "^o-[0-9]+$"}
      - name: amount
        logicalType: number
        physicalType: float32
        logicalTypeOptions: {minimum: 0, maximum: 1000}
      - name: qty
        logicalType: integer
        physicalType: int32
      - name: channel
        logicalType: string
        classification: internal
        quality:
          - {name: channel_known, metric: invalidValues, arguments: {validValues: [web, app, store]}, mustBe: 0}
      - name: note
        logicalType: string
        logicalTypeOptions: {maxLength: 100}
        quality:
          - {name: note_nulls, metric: nullValues, mustBeLessThan: 5, unit: percent}
    quality:
      - {name: few_nulls, metric: rowCount, mustBeGreaterThan: 10, severity: warning}
      - {name: positive, type: custom, engine: expression, implementation: "qty >= 0"}
"""


NOTE = """\
      - name: note
        logicalType: string
        logicalTypeOptions: {maxLength: 100}
        quality:
          - {name: note_nulls, metric: nullValues, mustBeLessThan: 5, unit: percent}
"""


def _load(text: str, version: str) -> object:
    return parse_contract(text.replace("version: 1.2.3", f"version: {version}"), path="c.yaml")


# (id, old text → new text replacements, new version, expected kinds, breaks producers, breaks consumers, bump ok)
CASES = [
    ("identical-same-version", [], "1.2.3", set(), False, False, True),
    (
        "description-only-patch",
        [("team: {name: shop}", "team: {name: shop}\ndescription: {purpose: x}")],
        "1.2.4",
        set(),
        False,
        False,
        True,
    ),
    (
        "changed-but-same-version",
        [("team: {name: shop}", "team: {name: shop}\ndescription: {purpose: x}")],
        "1.2.3",
        set(),
        False,
        False,
        False,
    ),
    (
        "optional-field-added-minor",
        [
            (
                "    quality:\n      - {name: few",
                "      - {name: extra, logicalType: string}\n    quality:\n      - {name: few",
            )
        ],
        "1.3.0",
        {ChangeKind.FIELD_ADDED},
        False,
        False,
        True,
    ),
    (
        "optional-field-added-patch-fails",
        [
            (
                "    quality:\n      - {name: few",
                "      - {name: extra, logicalType: string}\n    quality:\n      - {name: few",
            )
        ],
        "1.2.4",
        {ChangeKind.FIELD_ADDED},
        False,
        False,
        False,
    ),
    (
        "required-field-added",
        [
            (
                "    quality:\n      - {name: few",
                "      - {name: extra, logicalType: string, required: true}\n    quality:\n      - {name: few",
            )
        ],
        "2.0.0",
        {ChangeKind.FIELD_ADDED},
        True,
        False,
        True,
    ),
    (
        "field-removed-minor-fails",
        [(NOTE, "")],
        "1.3.0",
        {ChangeKind.FIELD_REMOVED, ChangeKind.RULE_REMOVED},
        False,
        True,
        False,
    ),
    (
        "field-removed-major",
        [(NOTE, "")],
        "2.0.0",
        {ChangeKind.FIELD_REMOVED, ChangeKind.RULE_REMOVED},
        False,
        True,
        True,
    ),
    (
        "required-added",
        [
            (
                "      - name: qty\n        logicalType: integer\n",
                "      - name: qty\n        logicalType: integer\n        required: true\n",
            )
        ],
        "1.3.0",
        {ChangeKind.REQUIRED_ADDED},
        True,
        False,
        False,
    ),
    (
        "required-removed",
        [("        required: true\n        logicalTypeOptions: {pattern", "        logicalTypeOptions: {pattern")],
        "2.0.0",
        {ChangeKind.REQUIRED_REMOVED},
        False,
        True,
        True,
    ),
    (
        "type-narrowed",
        [("physicalType: int32", "physicalType: int16")],
        "2.0.0",
        {ChangeKind.TYPE_NARROWED},
        True,
        False,
        True,
    ),
    (
        "type-widened",
        [("physicalType: float32", "physicalType: double")],
        "1.3.0",
        {ChangeKind.TYPE_WIDENED},
        False,
        True,
        False,
    ),
    (
        "type-changed",
        [
            (
                "      - name: qty\n        logicalType: integer\n        physicalType: int32\n",
                "      - name: qty\n        logicalType: string\n",
            )
        ],
        "2.0.0",
        {ChangeKind.TYPE_CHANGED},
        True,
        True,
        True,
    ),
    ("range-tightened", [("maximum: 1000", "maximum: 500")], "2.0.0", {ChangeKind.RANGE_TIGHTENED}, True, False, True),
    ("range-loosened", [("maximum: 1000", "maximum: 5000")], "1.3.0", {ChangeKind.RANGE_LOOSENED}, False, True, False),
    (
        "range-strict",
        [("minimum: 0,", "exclusiveMinimum: 0,")],
        "2.0.0",
        {ChangeKind.RANGE_TIGHTENED},
        True,
        False,
        True,
    ),
    (
        "length-loosened",
        [("maxLength: 100", "maxLength: 200")],
        "2.0.0",
        {ChangeKind.RANGE_LOOSENED},
        False,
        True,
        True,
    ),
    (
        "enum-removed",
        [("[web, app, store]", "[web, app]")],
        "2.0.0",
        {ChangeKind.ENUM_VALUES_REMOVED},
        True,
        False,
        True,
    ),
    (
        "enum-added-minor-fails",
        [("[web, app, store]", "[web, app, store, kiosk]")],
        "1.3.0",
        {ChangeKind.ENUM_VALUES_ADDED},
        False,
        True,
        False,
    ),
    ("pattern-changed", [('"^o-[0-9]+$"', '"^o-[0-9a-f]+$"')], "2.0.0", {ChangeKind.PATTERN_CHANGED}, True, True, True),
    (
        "unique-added",
        [
            (
                "        required: true\n        logicalTypeOptions: {pattern",
                "        required: true\n        unique: true\n        logicalTypeOptions: {pattern",
            )
        ],
        "1.2.4",
        {ChangeKind.UNIQUE_ADDED},
        True,
        False,
        False,
    ),
    (
        "rule-added-error",
        [
            (
                "      - {name: few_nulls",
                "      - {name: many, metric: rowCount, mustBeLessThan: 9}\n      - {name: few_nulls",
            )
        ],
        "2.0.0",
        {ChangeKind.RULE_ADDED},
        True,
        False,
        True,
    ),
    (
        "rule-added-warning-minor",
        [
            (
                "      - {name: few_nulls",
                "      - {name: many, metric: rowCount, "
                "mustBeLessThan: 9, severity: warning}\n      - {name: few_nulls",
            )
        ],
        "1.3.0",
        {ChangeKind.RULE_ADDED},
        False,
        False,
        True,
    ),
    (
        "rule-removed",
        [
            (
                "        quality:\n          - {name: channel_known, metric: invalidValues, "
                "arguments: {validValues: [web, app, store]}, mustBe: 0}\n",
                "",
            )
        ],
        "2.0.0",
        {ChangeKind.RULE_REMOVED},
        False,
        True,
        True,
    ),
    (
        "threshold-tightened",
        [("mustBeLessThan: 5, unit", "mustBeLessThan: 1, unit")],
        "1.3.0",
        {ChangeKind.THRESHOLD_TIGHTENED},
        True,
        False,
        False,
    ),
    (
        "threshold-loosened",
        [("mustBeLessThan: 5, unit", "mustBeLessOrEqualTo: 10, unit")],
        "2.0.0",
        {ChangeKind.THRESHOLD_LOOSENED},
        False,
        True,
        True,
    ),
    (
        "warning-threshold-not-breaking",
        [("mustBeGreaterThan: 10", "mustBeGreaterThan: 100")],
        "1.3.0",
        {ChangeKind.THRESHOLD_TIGHTENED},
        False,
        False,
        True,
    ),
    (
        "severity-raised",
        [("mustBeGreaterThan: 10, severity: warning", "mustBeGreaterThan: 10, severity: error")],
        "2.0.0",
        {ChangeKind.SEVERITY_RAISED},
        True,
        False,
        True,
    ),
    (
        "classification-raised",
        [("classification: internal", "classification: pii")],
        "2.0.0",
        {ChangeKind.CLASSIFICATION_RAISED},
        False,
        True,
        True,
    ),
    (
        "classification-lowered",
        [("classification: internal", "classification: public")],
        "1.3.0",
        {ChangeKind.CLASSIFICATION_LOWERED},
        False,
        False,
        True,
    ),
    ("topic-changed", [("shop.orders.v1", "shop.orders.v2")], "1.3.0", {ChangeKind.TOPIC_CHANGED}, True, True, False),
    (
        "schema-added",
        [
            ("    physicalName: shop.orders.v1\n", "    physicalName: shop.orders.v1\n"),
            ("schema:\n", "schema:\n  - name: refunds\n    properties:\n      - {name: id, logicalType: string}\n"),
        ],
        "1.3.0",
        {ChangeKind.SCHEMA_ADDED},
        False,
        False,
        True,
    ),
    (
        "status-deprecated-minor",
        [("status: active", "status: deprecated")],
        "1.3.0",
        {ChangeKind.STATUS_CHANGED},
        False,
        False,
        True,
    ),
    (
        "status-deprecated-patch-fails",
        [("status: active", "status: deprecated")],
        "1.2.4",
        {ChangeKind.STATUS_CHANGED},
        False,
        False,
        False,
    ),
    (
        "owner-changed-patch",
        [("team: {name: shop}", "team: {name: checkout}")],
        "1.2.4",
        {ChangeKind.OWNER_CHANGED},
        False,
        False,
        True,
    ),
    ("downgrade-fails", [("maximum: 1000", "maximum: 5000")], "1.2.0", {ChangeKind.RANGE_LOOSENED}, False, True, False),
    (
        "prerelease-of-next-major",
        [("maximum: 1000", "maximum: 500")],
        "2.0.0-rc.1",
        {ChangeKind.RANGE_TIGHTENED},
        True,
        False,
        True,
    ),
]


@pytest.mark.parametrize(("case", "edits", "version", "kinds", "producers", "consumers", "ok"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_version_pairs(
    case: str, edits: list[tuple[str, str]], version: str, kinds: set[ChangeKind], producers: bool, consumers: bool,
    ok: bool,
) -> None:  # fmt: skip
    new_text = BASE
    for before, after in edits:
        assert before in new_text, f"{case}: the edit does not apply"
        new_text = new_text.replace(before, after, 1)
    result = diff_contracts(_load(BASE, "1.2.3"), _load(new_text, version))  # type: ignore[arg-type]
    assert {c.kind for c in result.changes} == kinds, result.changes
    assert any(c.breaks_producers for c in result.changes) is producers
    assert any(c.breaks_consumers for c in result.changes) is consumers
    check = result.semver()
    assert check.ok is ok, check.message


def test_zero_major_versions_take_breaking_changes_in_a_minor_bump() -> None:
    old = BASE.replace("version: 1.2.3", "version: 0.4.1")
    new = old.replace("version: 0.4.1", "version: 0.5.0").replace("maximum: 1000", "maximum: 10")
    result = diff_contracts(parse_contract(old), parse_contract(new))
    assert result.required_bump is Bump.MAJOR and result.semver().ok
    patch = diff_contracts(parse_contract(old), parse_contract(new.replace("0.5.0", "0.4.2")))
    assert not patch.semver().ok and "0.y.z" in patch.semver().message


def test_changes_carry_the_line_and_json_shape() -> None:
    new = BASE.replace("maximum: 1000", "maximum: 500").replace("version: 1.2.3", "version: 2.0.0")
    result = diff_contracts(parse_contract(BASE), parse_contract(new))
    (change,) = result.changes
    assert change.line == 18  # the `maximum` of `amount`
    out = result.as_dict()
    assert out["semver"] == {"ok": True, "required": "major", "actual": "major", "message": out["semver"]["message"]}
    assert out["changes"][0]["old"] == ">= 0, <= 1000" and out["changes"][0]["new"] == ">= 0, <= 500"


@pytest.mark.parametrize(
    ("old", "new", "relation"),
    [
        (Threshold("mustBeLessThan", 1.0), Threshold("mustBe", 0.0), Relation.SAME),  # whole rows
        (Threshold("mustBeLessThan", 5.0, Unit.PERCENT), Threshold("mustBeLessThan", 2.0, Unit.PERCENT),
         Relation.TIGHTENED),
        (Threshold("mustBeBetween", (1.0, 5.0)), Threshold("mustBeBetween", (0.0, 9.0)), Relation.LOOSENED),
        (Threshold("mustBeBetween", (1.0, 5.0)), Threshold("mustBeBetween", (3.0, 9.0)), Relation.CHANGED),
        (Threshold("mustBeLessThan", 5.0), Threshold("mustBeLessThan", 5.0, Unit.PERCENT), Relation.CHANGED),
        (Threshold("mustNotBe", 3.0), Threshold("mustBeLessThan", 3.0), Relation.TIGHTENED),
    ],
)  # fmt: skip
def test_threshold_relations(old: Threshold, new: Threshold, relation: Relation) -> None:
    assert threshold_relation(old, new) is relation


def test_batch_metric_thresholds_are_over_all_numbers() -> None:
    assert threshold_relation(Threshold("mustBeGreaterThan", 10.0), Threshold("mustBeGreaterThan", 100.0),
                              batch_metric=True) is Relation.TIGHTENED  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "relation"),
    [
        (pl.Int32(), pl.Int64(), Relation.LOOSENED),
        (pl.Int64(), pl.Int8(), Relation.TIGHTENED),
        (pl.UInt8(), pl.Int16(), Relation.LOOSENED),
        (pl.Int32(), pl.Float64(), Relation.LOOSENED),
        (pl.Int64(), pl.String(), Relation.CHANGED),
        (pl.Datetime("ms", "UTC"), pl.Datetime("us", "UTC"), Relation.LOOSENED),
        (pl.Datetime("ms", "UTC"), pl.Datetime("ms"), Relation.CHANGED),
        (pl.List(pl.Int16()), pl.List(pl.Int32()), Relation.LOOSENED),
    ],
)
def test_type_relations(old: pl.DataType, new: pl.DataType, relation: Relation) -> None:
    assert type_relation(old, new) is relation


def test_semver_parsing_and_checks() -> None:
    assert parse_version("1.0") is None and parse_version("01.2.3") is None
    assert parse_version("v1.2.3-rc.1+b5") is not None
    assert not check_bump("one", "1.0.0", Bump.NONE, True).ok
    assert check_bump("1.2.3", "1.2.3+build.7", Bump.NONE, False).ok
    assert check_bump("1.0.0-rc.2", "1.0.0", Bump.MINOR, True).ok is False  # a release is a patch step from its rc


def test_contract_level_changes_name_their_line() -> None:
    new = BASE.replace("status: active", "status: retired").replace("team: {name: shop}", "team: {name: ops}")
    changes = {c.kind: c for c in diff_contracts(parse_contract(BASE), parse_contract(new)).changes}
    assert changes[ChangeKind.STATUS_CHANGED].line == 5 and changes[ChangeKind.STATUS_CHANGED].breaks_consumers
    assert changes[ChangeKind.OWNER_CHANGED].line == 6 and not changes[ChangeKind.OWNER_CHANGED].breaking


def test_response_policies_added_removed_changed_are_patch_changes() -> None:
    def with_policies(text: str, policies: str) -> str:
        block = f"    customProperties:\n      - property: qstreams.policies\n        value:\n{policies}"
        return text.replace("    physicalName: shop.orders.v1\n", "    physicalName: shop.orders.v1\n" + block)

    a = "          - {name: a, when: {metric: window.failed}}\n"
    b = "          - {name: b, when: {metric: lag.records, above: 10}}\n"
    old = with_policies(BASE, a + b)
    new = with_policies(BASE, a.replace("window.failed", "window.records, below: 1") + b.replace("b,", "c,"))
    result = diff_contracts(parse_contract(old), parse_contract(new.replace("1.2.3", "1.2.4")))
    kinds = sorted((str(c.kind), c.subject, c.line) for c in result.changes)
    assert kinds == [("policy_added", "c", 14), ("policy_changed", "a", 13), ("policy_removed", "b", 14)]
    assert result.required_bump is Bump.PATCH and result.semver().ok
