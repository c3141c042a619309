"""A reference built from numeric data holding +/-inf is refused, naming the field and the first row.

Before, such a reference was built: its outer bin edge was infinite and its moments NaN, so the normalised
Wasserstein distance of every window was infinite and every window judged by it drifted (scipy's
``wasserstein_distance`` is not finite either: ``inf`` with an infinite value on one side, NaN on both),
and the file written (JSON has no infinity) was refused as "corrupt" at load. A reference describes the
expected data; infinite values have no quantile or spread, so the build now fails with the count and
where the first one is.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from streams.contracts.loader import load_contract
from streams.errors import ProfileError
from streams.profiles.reference import build_reference
from streams.testing import generate_feature_frame

ROOT = Path(__file__).resolve().parents[3]
FEATURES = ROOT / "contracts" / "card_transactions.odcs.yaml"


def _data(tmp_path: Path) -> Path:
    frame = generate_feature_frame(3_000, seed=7)
    amount = frame["amount_eur"].to_list()
    amount[1234], amount[2500] = math.inf, -math.inf
    path = tmp_path / "ref.parquet"
    frame.with_columns(pl.Series("amount_eur", amount, dtype=frame["amount_eur"].dtype)).write_parquet(path)
    return path


def test_a_reference_holding_infinite_values_is_refused_at_build(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"2 infinite value\(s\) of 3,000 rows in field 'amount_eur'") as err:
        build_reference(load_contract(FEATURES), None, [_data(tmp_path)], batch_rows=1_000)
    assert err.value.reason == "infinite"
    assert "at data row 1,235" in str(err.value)  # the first, counted from 1 across batches
