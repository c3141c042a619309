"""Profiles merge: the profile of a split, merged in any order, is the profile of the whole."""

from __future__ import annotations

import itertools
import math
import zlib

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.errors import ProfileError, StreamsError
from streams.profiles.codec import FORMAT_VERSION, decode_profile, encode_profile
from streams.profiles.fields import CategoricalProfile, NumericProfile
from streams.profiles.profile import Profile, empty_profile, merge_profiles, profile_frame
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec

EDGES = (-50.0, -1.0, 0.0, 0.5, 1.0, 2.0, 10.0, 50.0)
SPEC = ProfileSpec(
    "urn:test@1.0.0",
    "t",
    (
        FieldSpec("x", Kind.NUMERIC, EDGES),
        FieldSpec("n", Kind.NUMERIC, (0.0, 1.0, 2.0, 3.0)),
        FieldSpec("u", Kind.NUMERIC),  # no reference bins: moments only
        FieldSpec("c", Kind.CATEGORICAL, cap=8),
        FieldSpec("b", Kind.CATEGORICAL),
    ),
    kmv_k=16,
)

floats = st.one_of(st.none(), st.just(float("nan")), st.floats(-100, 100, allow_nan=False, width=32))
rows = st.tuples(
    floats,
    st.one_of(st.none(), st.integers(-2, 5)),
    floats,
    st.one_of(st.none(), st.sampled_from("abcdefgh")),
    st.one_of(st.none(), st.booleans()),
)


def frame(data: list[tuple[object, ...]]) -> pl.DataFrame:
    schema = {"x": pl.Float64, "n": pl.Int32, "u": pl.Float32, "c": pl.String, "b": pl.Boolean}
    return pl.DataFrame(data, schema=schema, orient="row")


def assert_same(merged: Profile, whole: Profile) -> None:
    assert merged.rows == whole.rows
    assert merged.fields.keys() == whole.fields.keys()
    for name, w in whole.fields.items():
        m = merged.fields[name]
        if isinstance(w, CategoricalProfile):
            assert m == w, name  # bit-identical
            continue
        assert isinstance(m, NumericProfile)
        exact = (m.count, m.nulls, m.min, m.max, m.hist, m.below)
        assert exact == (w.count, w.nulls, w.min, w.max, w.hist, w.below), name
        scale = max(1.0, abs(w.mean))
        assert math.isclose(m.mean, w.mean, rel_tol=1e-9, abs_tol=1e-9 * scale), name
        for gap in ("below_gap", "above_gap"):
            assert math.isclose(getattr(m, gap), getattr(w, gap), rel_tol=1e-9, abs_tol=1e-9), name
        assert math.isclose(m.m2, w.m2, rel_tol=1e-9, abs_tol=1e-7 * max(1.0, w.mean**2) * max(1, w.count)), name


@settings(max_examples=100, deadline=None)
@given(st.lists(rows, min_size=0, max_size=60), st.lists(st.integers(0, 60), max_size=2), st.randoms())
def test_merge_of_split_equals_profile_of_union(data, cuts, rnd):
    df = frame(data)
    bounds = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    parts = [profile_frame(df[a:b], SPEC) for a, b in itertools.pairwise(bounds)] or [profile_frame(df, SPEC)]
    rnd.shuffle(parts)
    whole = profile_frame(df, SPEC)
    assert_same(merge_profiles(parts), whole)
    assert_same(merge_profiles([empty_profile(SPEC), *parts]), whole)


@settings(max_examples=60, deadline=None)
@given(st.lists(rows, max_size=30), st.lists(rows, max_size=30), st.lists(rows, max_size=30))
def test_merge_is_associative_and_commutative(a, b, c):
    pa, pb, pc = (profile_frame(frame(x), SPEC) for x in (a, b, c))
    assert_same(pa.merge(pb).merge(pc), pa.merge(pb.merge(pc)))
    assert_same(pa.merge(pb), pb.merge(pa))


def test_profile_values_match_polars():
    df = frame([(1.0, 2, 0.5, "a", True), (None, 1, None, "b", False), (float("nan"), None, 2.0, "a", None)])
    p = profile_frame(df, SPEC)
    x = p.numeric("x")
    assert (x.count, x.nulls, x.min, x.max, x.mean, x.m2) == (1, 2, 1.0, 1.0, 1.0, 0.0)
    assert x.hist == (0, 0, 0, 0, 1, 0, 0, 0, 0)  # 1.0 falls in (0.5, 1.0]: right-closed bins
    c = p.categorical("c")
    assert c.frequencies() == {"a": 2, "b": 1} and c.distinct == 2 and c.other == 0
    assert p.categorical("b").frequencies() == {"false": 1, "true": 1}
    assert p.numeric("n").variance == pytest.approx(0.5)


def test_cap_keeps_top_values_and_counts_the_rest():
    df = frame([(None, None, None, v, None) for v in "aaabbbccdefghhhhi"])  # 9 distinct > cap 8
    c = profile_frame(df, SPEC).categorical("c")
    assert c.truncated and c.other == 1 and len(c.counts) == 8
    assert c.frequencies()["h"] == 4 and "i" not in c.frequencies()  # ties broken by value: "i" > "g"


def test_codec_round_trip_is_identical():
    df = frame([(float(i) / 3, i % 4, float(i), "abcdefgh"[i % 8], i % 2 == 0) for i in range(50)])
    p = profile_frame(df, SPEC)
    blob = encode_profile(p)
    assert decode_profile(blob, contract=SPEC.contract, schema="t", spec_id=SPEC.binning_id) == p


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda b: b[:-7], "corrupt"),
        (lambda b: b"PK\x03\x04" + b[4:], "corrupt"),
        (lambda b: b[:3] + bytes([FORMAT_VERSION + 1]) + b[4:], "format_version"),
        (lambda b: b[:4] + zlib.compress(b'{"type": "profile", "rows": 3}'), "corrupt"),
        (lambda b: b"", "corrupt"),
    ],
)
def test_corrupt_profiles_raise_a_clear_error(mangle, reason):
    blob = encode_profile(profile_frame(frame([(1.0, 1, 1.0, "a", True)]), SPEC))
    with pytest.raises(ProfileError) as err:
        decode_profile(mangle(blob))
    assert err.value.reason == reason
    assert isinstance(err.value, StreamsError)
    assert str(err.value).endswith((".", ")")) and len(str(err.value)) > 30


def test_profiles_of_another_contract_version_schema_or_bins_are_refused():
    blob = encode_profile(profile_frame(frame([(1.0, 1, 1.0, "a", True)]), SPEC))
    with pytest.raises(ProfileError, match="another version of this contract") as err:
        decode_profile(blob, contract="urn:test@2.0.0")
    assert err.value.reason == "contract"
    with pytest.raises(ProfileError, match="another contract"):
        decode_profile(blob, contract="urn:other@1.0.0")
    with pytest.raises(ProfileError) as err:
        decode_profile(blob, schema="other")
    assert err.value.reason == "schema"
    other_bins = ProfileSpec(SPEC.contract, "t", (FieldSpec("x", Kind.NUMERIC, (0.0, 1.0)),))
    with pytest.raises(ProfileError) as err:
        decode_profile(blob, spec_id=other_bins.binning_id)
    assert err.value.reason == "binning"
    with pytest.raises(ProfileError) as err:
        profile_frame(frame([]), SPEC).merge(profile_frame(frame([]), other_bins))
    assert err.value.reason == "binning"


def test_identifier_distinct_sketch_falls_back_when_values_repeat():
    spec = ProfileSpec("urn:test@1.0.0", "t", (FieldSpec("id", Kind.CATEGORICAL, cap=0),), kmv_k=256)
    values = [f"id-{i:04d}" for i in range(300)] * 20  # 6,000 rows: the 1,024 smallest hashes cover ~52 values
    p = profile_frame(pl.DataFrame({"id": values}), spec).categorical("id")
    exact = sorted(int(h) for h in pl.Series(values).unique().hash(seed=0).to_list())[:256]
    assert p.kmv == tuple(exact) and p.counts == () and p.other == p.count == 6_000
    assert abs(p.distinct - 300) / 300 < 0.2  # KMV estimate above k distinct values
    small = profile_frame(pl.DataFrame({"id": values[:200]}), spec).categorical("id")
    assert small.distinct == 200  # exact below k


def test_feature_batches_merge_to_the_whole_with_reference_bins(tmp_path):
    from streams.contracts.loader import load_contract
    from streams.profiles.reference import build_reference
    from streams.testing import generate_feature_frame

    ref_data = tmp_path / "ref.parquet"
    generate_feature_frame(5_000, seed=1).write_parquet(ref_data)
    spec = build_reference(load_contract("contracts/card_transactions.odcs.yaml"), None, [ref_data]).spec
    assert {f.name for f in spec.fields if f.cap == 0} == {"customer_id", "merchant_id", "device_id"}
    df = generate_feature_frame(9_000, seed=2)
    parts = [profile_frame(df[a:b], spec) for a, b in ((0, 2_000), (2_000, 7_500), (7_500, 9_000))]
    assert_same(merge_profiles(parts[::-1]), profile_frame(df, spec))


def test_bad_data_never_raises():
    """A numeric field arriving as text, a missing column: nulls in the profile, no exception."""
    odd = pl.DataFrame({"x": ["1.5", "abc", None], "c": [1, 2, 2], "b": [True, None, False]})
    p = profile_frame(odd, SPEC)
    assert (p.numeric("x").count, p.numeric("x").nulls) == (1, 2)
    assert p.numeric("n").nulls == 3 and p.numeric("u").count == 0  # absent columns
    assert p.categorical("c").frequencies() == {"1": 1, "2": 2}


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 2**64 - 1)), st.sets(st.integers(0, 2**64 - 1)), st.integers(1, 12), st.booleans())
def test_distinct_sketches_merge_to_the_k_smallest_of_the_union(a, b, k, overlap):
    if overlap:
        b |= set(sorted(a)[::2])
    left = CategoricalProfile(len(a), 0, (), len(a), tuple(sorted(a))[:k], 0, k)
    right = CategoricalProfile(len(b), 0, (), len(b), tuple(sorted(b))[:k], 0, k)
    assert left.merge(right).kmv == right.merge(left).kmv == tuple(sorted(a | b))[:k]
