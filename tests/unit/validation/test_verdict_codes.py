"""The verdicts read from the rows' bit codes (``report.verdicts``: ``valid_mask`` is "no gating rule's bit") and the
uniqueness check reading the candidates' hashes from the numpy hashes (``failures.verify_rows`` with ``values``)
give what the masks themselves give."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts.model import Op, Rule
from streams.validation import failures, report


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_valid_rows_fail_no_gating_rule(data: st.DataObject) -> None:
    rows = data.draw(st.integers(1, 40))
    rules = data.draw(st.integers(1, 11))  # past 8 failing rules the verdicts take the 63-bit words
    masks = [np.array(data.draw(st.lists(st.booleans(), min_size=rows, max_size=rows))) for _ in range(rules)]
    gates = data.draw(st.lists(st.booleans(), min_size=rules, max_size=rules).filter(any))
    failing = [(m, f"rule{i}", g) for i, (m, g) in enumerate(zip(masks, gates, strict=True))]
    valid, violations, gating = report.verdicts(rows, failing, {})
    expected = ~np.logical_or.reduce([m for m, g in zip(masks, gates, strict=True) if g])
    assert valid.to_list() == expected.tolist()
    assert violations.to_list() == [[f"rule{i}" for i in range(rules) if masks[i][r]] for r in range(rows)]
    assert gating is not None
    assert gating.to_list() == [[f"rule{i}" for i in range(rules) if masks[i][r] and gates[i]] for r in range(rows)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "dd", "é"]), min_size=2, max_size=40))
def test_the_numpy_hashes_give_the_gathered_hashes_answer(keys: list[str]) -> None:
    frame = pl.DataFrame({"k": keys})
    hashes = frame.get_column("k").hash()
    rows = failures.repeated_rows(hashes)
    if rows is None:  # no key repeats: nothing to verify
        assert len(set(keys)) == len(keys)
        return
    rule = Rule(name="k:unique", op=Op.UNIQUE, args=(), check="unique", column="k")
    gathered = failures.verify_rows(frame, rows, rule, hashes)
    read = failures.verify_rows(frame, rows, rule, hashes, hashes.to_numpy())
    assert read[1] == gathered[1] == len(rows) - len({keys[i] for i in rows.tolist()})
    assert read[0].tolist() == gathered[0].tolist() == [keys.count(k) > 1 for k in keys]
