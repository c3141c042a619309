"""Score bins are ``[k / bins, (k + 1) / bins)`` on the floats nearest ``k / bins`` (1.0 in the last bin): a score
written as an edge (0.29) is in the bin it opens, in the prediction profiles (polars) and in the labels join (Python)
alike. ``floor(score * bins)`` put 0.29, 0.57 and 0.58 one bin low at 100 bins (0.29 * 100 = 28.999999999999996)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from streams.profiles.prediction import score_bin, score_bin_expr


def _expected(score: float, bins: int) -> int:
    # from the definition: the number of edges k / bins (k = 1 .. bins - 1) at or below the score
    return sum(1 for k in range(1, bins) if k / bins <= score)


@pytest.mark.parametrize("bins", [7, 10, 100, 1000])
def test_a_score_on_an_edge_is_in_the_bin_it_opens_and_just_below_it_in_the_bin_before(bins: int) -> None:
    scores = [k / bins for k in range(bins + 1)]
    scores += [math.nextafter(x, -1.0) for x in scores[1:]] + [math.nextafter(x, 2.0) for x in scores[:-1]]
    want = [_expected(s, bins) for s in scores]
    got = pl.DataFrame({"s": scores}).select(score_bin_expr(pl.col("s"), bins)).to_series().to_list()
    assert got == want
    assert [score_bin(s, bins) for s in scores] == want
    assert want[bins] == bins - 1 and want[0] == 0  # 1.0 in the last bin, 0.0 in the first


def test_the_two_decimal_edges_that_floor_misplaced() -> None:
    got = pl.DataFrame({"s": [0.29, 0.57, 0.58]}).select(score_bin_expr(pl.col("s"), 100)).to_series().to_list()
    assert got == [29, 57, 58]
    assert [score_bin(s, 100) for s in (0.29, 0.57, 0.58)] == [29, 57, 58]
