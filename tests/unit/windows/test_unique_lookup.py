"""A run's lookup of a few hashes (one ``np.searchsorted``, as on a slow feed's batches) finds what the vectorised
search over the radix directory finds (used above :data:`streams.windows.unique._FEW` hashes): the same hits and the
same lower-bound positions, hashes present or not, at the ends of the range, over runs of every size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.windows import unique
from streams.windows.unique import _Run

U64 = st.integers(0, 2**64 - 1)


@settings(max_examples=200, deadline=None)
@given(stored=st.lists(U64, min_size=1, max_size=3000), probes=st.lists(U64, max_size=40), reuse=st.integers(0, 40))
def test_few_lookups_find_what_the_directory_search_finds(stored: list[int], probes: list[int], reuse: int) -> None:
    hashes = np.asarray(stored, dtype=np.uint64)
    run = _Run(hashes, np.arange(len(hashes), dtype=np.int64), np.zeros(len(hashes), dtype=np.int64))
    q = np.asarray([*probes, *stored[:reuse], 0, 2**64 - 1], dtype=np.uint64)
    assert len(q) <= unique._FEW  # the short path
    few = run.find(q)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(unique, "_FEW", -1)  # the directory search for every lookup
        wide = run.find(q)
    assert few[0].tolist() == wide[0].tolist()
    assert few[1].tolist() == wide[1].tolist()
    assert all(few[0][len(probes) : len(probes) + min(reuse, len(stored))])  # the stored hashes are found
