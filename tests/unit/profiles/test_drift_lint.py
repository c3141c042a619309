"""``qstreams contracts lint`` checks every ``qstreams.drift`` mapping, with or without a reference profile."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from streams.contracts.loader import load_contract
from streams.lint import lint_file
from streams.profiles.monitor import DriftMonitor
from streams.profiles.reference import build_reference, save_reference
from streams.testing import generate_feature_records

ROOT = Path(__file__).resolve().parents[3]
FEATURES = ROOT / "contracts" / "card_transactions.odcs.yaml"
NONE = "            value: {method: none}\n"


def drift_findings(path: Path) -> list[tuple[int | None, str]]:
    return [(f.line, f.message) for f in lint_file(path) if "qstreams.drift" in f.message and not f.note]


def hour_line(text: str) -> int:
    return text.splitlines().index("      - name: hour_of_day") + 1


def test_the_demo_contract_marks_hour_of_day_unjudged_and_lints_clean() -> None:
    text = FEATURES.read_text()
    assert NONE in text and "not stationary within a window" in text
    assert drift_findings(FEATURES) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{method: none, exclude: true}", "unknown key(s) ['exclude']"),
        ("{method: chi2}", "does not apply to numeric field 'hour_of_day'"),
        ("{method: off}", "use one of ['jensen_shannon', 'ks', 'psi', 'wasserstein', 'none']"),
        ("{method: none, threshold: 0.1}", "nothing to judge"),
        ("{minCount: 0}", "positive integer"),
        ("none", "must be a mapping"),
    ],
)
def test_a_wrong_override_is_a_finding_at_its_property(tmp_path: Path, value: str, expected: str) -> None:
    text = FEATURES.read_text()
    bad = tmp_path / "c.odcs.yaml"
    bad.write_text(text.replace(NONE, f"            value: {value}\n"))
    findings = drift_findings(bad)
    assert len(findings) == 1 and expected in findings[0][1], findings
    if value != "none":  # a value that is no mapping at all is the schema object's
        assert findings[0][0] == hour_line(text)


def test_an_override_on_a_field_that_is_not_profiled_is_a_finding(tmp_path: Path) -> None:
    text = FEATURES.read_text()
    moved = text.replace(NONE, "            value: {method: psi}\n").replace(
        "      - name: event_id\n",
        "      - name: event_id\n        customProperties:\n"
        "          - property: qstreams.drift\n            value: {method: ks}\n",
        1,
    )
    bad = tmp_path / "c.odcs.yaml"
    bad.write_text(moved)
    (finding,) = drift_findings(bad)
    assert "'event_id', which is not profiled" in finding[1]


def test_with_a_reference_the_finding_is_said_once_and_a_good_override_binds(tmp_path: Path) -> None:
    text = FEATURES.read_text()
    marker = "    physicalType: topic\n"
    named = text.replace(
        marker, marker + "    customProperties:\n      - property: qstreams.reference\n        value: ref.qsref\n", 1
    )
    good = tmp_path / "good.odcs.yaml"
    good.write_text(named)
    data = tmp_path / "clean.ndjson"
    pl.DataFrame(generate_feature_records(2_000, seed=5).records).write_ndjson(data)
    save_reference(build_reference(load_contract(good), None, [data]), tmp_path / "ref.qsref")
    assert drift_findings(good) == []
    monitor = DriftMonitor.from_contract(load_contract(good))
    assert monitor is not None and dict(monitor.overrides["hour_of_day"]) == {"method": "none"}
    bad = tmp_path / "bad.odcs.yaml"
    bad.write_text(named.replace(NONE, "            value: {method: none, exclude: true}\n"))
    assert len(drift_findings(bad)) == 1
