"""Text-key uniqueness verified by neighbours of the same hash (``failures._grouped``): the keys compared as Python
strings (a few) and in one polars comparison (many) give the same answer, collisions included."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.validation import failures


def _both(hashes: np.ndarray, keys: pl.Series, monkeypatch: pytest.MonkeyPatch) -> tuple[int | None, int | None]:
    with monkeypatch.context() as m:
        m.setattr(failures, "_PY_KEYS", 1 << 30)
        python = failures._grouped(hashes, keys)
        m.setattr(failures, "_PY_KEYS", 0)
        return python, failures._grouped(hashes, keys)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["bad", "r-1", "r-2", "é", "", "r-1 "]) | st.text(max_size=4), min_size=2, max_size=60))
def test_python_and_polars_comparisons_agree(values: list[str]) -> None:
    keys = pl.Series(values, dtype=pl.String)
    hashes = keys.hash().to_numpy()
    with pytest.MonkeyPatch.context() as monkeypatch:
        python, in_polars = _both(hashes, keys, monkeypatch)
    assert python == in_polars
    distinct = len(set(values))
    assert python == (len(values) - distinct if distinct < len(values) else None)


def test_a_collision_is_found_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = pl.Series(["a", "a", "b", "c"] * 100)
    hashes = np.array([1, 1, 1, 2] * 100, dtype=np.uint64)  # "b" shares "a"'s hash
    assert _both(hashes, keys, monkeypatch) == (None, None)
    fair = keys.hash().to_numpy()
    assert _both(fair, keys, monkeypatch) == (397, 397)  # 400 rows, 3 keys
