"""The tested fields of one window are one family: Holm's step-down over their p-values
(``DriftConfig.family_correction``), so that a clean window of many fields is flagged about as often as
one field is, and a real shift of one field is still flagged."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from streams.profiles.drift import DriftConfig, Method, compare
from streams.profiles.profile import Profile, profile_frame
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec

FIELDS = [f"x{i}" for i in range(10)]
EDGES_ = tuple(float(e) for e in np.linspace(-4, 4, 41))
SPEC = ProfileSpec("urn:test:family@1.0.0", "t", tuple(FieldSpec(f, Kind.NUMERIC, EDGES_) for f in FIELDS))
EDGES = dict.fromkeys(FIELDS, EDGES_)
ALONE = DriftConfig(family_correction=False)


def window(n: int, rng: np.random.Generator, shift: dict[str, float] | None = None) -> pl.DataFrame:
    shift = shift or {}
    return pl.DataFrame({f: rng.normal(shift.get(f, 0.0), 1.0, n) for f in FIELDS})


@pytest.fixture(scope="module")
def reference() -> Profile:
    return profile_frame(window(20_000, np.random.default_rng(7)), SPEC)


def test_clean_windows_of_ten_tested_fields_are_flagged_about_as_often_as_one_field(reference: Profile) -> None:
    rng = np.random.default_rng(11)
    family = alone = 0
    for _ in range(200):
        cur = profile_frame(window(300, rng), SPEC)  # n <= 1,000: every field is judged by the KS test
        family += bool(compare(reference, cur, edges=EDGES).drifted)
        alone += bool(compare(reference, cur, edges=EDGES, config=ALONE).drifted)
    # ten tests at p < 0.05 flag some field in ~40% of clean windows (1 - 0.95^10); the family keeps it near 5%
    assert alone >= 40, alone
    assert family <= 20, family


def test_a_shift_of_one_field_among_ten_is_flagged_at_the_threshold_it_met(reference: Profile) -> None:
    cur = profile_frame(window(300, np.random.default_rng(3), {"x4": 0.6}), SPEC)
    report = compare(reference, cur, edges=EDGES)
    assert report.drifted == ("x4",)
    main = report.field("x4").metrics[0]
    assert main.metric == Method.KS.value and main.drifted
    assert main.threshold == pytest.approx(0.05 / 10)  # the smallest p-value of ten meets alpha / 10
    assert main.p_value is not None and main.p_value < 0.005
    # the others were judged at the thresholds of their ranks (alpha / 9 ... alpha / 1), all above alpha / 10
    others = sorted(report.field(f).metrics[0].threshold or 0.0 for f in FIELDS if f != "x4")
    assert others == pytest.approx([0.05 / k for k in range(9, 0, -1)])


def test_a_field_with_its_own_threshold_is_judged_alone(reference: Profile) -> None:
    rng = np.random.default_rng(5)
    overrides = {"x0": {"method": "ks", "threshold": 0.05}}
    for _ in range(50):
        cur = profile_frame(window(300, rng), SPEC)
        report = compare(reference, cur, edges=EDGES, overrides=overrides)
        assert report.field("x0").metrics[0].threshold == 0.05
        if report.field("x0").metrics[0].p_value < 0.05:  # type: ignore[operator]
            assert "x0" in report.drifted
            break
    else:
        pytest.fail("no clean window of 50 had p < 0.05 on x0: the test needs another seed")


def test_one_tested_field_is_not_corrected(reference: Profile) -> None:
    cur = profile_frame(window(300, np.random.default_rng(9)), SPEC)
    overrides = {f: {"method": "wasserstein"} for f in FIELDS[1:]}  # only x0 is judged by a test
    report = compare(reference, cur, edges=EDGES, overrides=overrides)
    assert report.field("x0").metrics[0].threshold == 0.05
