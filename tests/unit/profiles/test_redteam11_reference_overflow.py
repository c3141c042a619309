"""Red team 11: reference data of finite values whose spread overflows float64 is refused at build.

Two amounts of ±1e300 among 3,000 ordinary ones: every value is finite (the ±inf check passed), but the sum of
squared deviations is ∞. The build succeeded; the reference's sd was ∞, so every window's normalised Wasserstein
distance read 0 (never drift), and the file it wrote held ``null`` there and was refused at load as "corrupt"
(``float() argument must be ... not 'NoneType'``)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from streams.contracts.loader import load_contract
from streams.errors import ProfileError
from streams.profiles.reference import build_reference
from streams.testing import generate_feature_frame

ROOT = Path(__file__).resolve().parents[3]
FEATURES = ROOT / "contracts" / "card_transactions.odcs.yaml"


def _data(tmp_path: Path, big: float) -> Path:
    frame = generate_feature_frame(3_000, seed=7)
    amount = frame["amount_eur"].to_list()
    amount[10], amount[20] = big, -big
    path = tmp_path / "ref.parquet"
    frame.with_columns(pl.Series("amount_eur", amount, dtype=frame["amount_eur"].dtype)).write_parquet(path)
    return path


def test_a_reference_whose_spread_overflows_is_refused_at_build(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"field 'amount_eur' holds values from -1e\+300 to 1e\+300") as err:
        build_reference(load_contract(FEATURES), None, [_data(tmp_path, 1e300)], batch_rows=1_000)
    assert err.value.reason == "infinite"


def test_large_values_whose_spread_is_finite_still_build(tmp_path: Path) -> None:
    reference = build_reference(load_contract(FEATURES), None, [_data(tmp_path, 1e150)], batch_rows=1_000)
    amount = reference.profile.numeric("amount_eur")
    assert amount.max == 1e150
    assert 0 < amount.std < float("inf")
