"""Red-team pass 2 on the labels join: a record arriving behind its partition's watermark after its counterpart
(within the horizon) was settled alone is counted once, as late; never both an unmatched prediction and an orphan.

Window 1 m, horizon 5 m, lateness 2 m (``scenario.CONTRACT``). The independent count is by hand: each input
record has exactly one outcome (matched pair, unmatched, orphan, duplicate or late)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.performance.scenario import (
    HORIZON_MS,
    LABELS,
    PREDICTIONS,
    T0,
    WINDOW_MS,
    label_record,
    prediction_record,
)
from tests.unit.performance.test_join_cases import Feed

S = 1000


def _totals(got: dict[tuple[int, str], dict[str, Any]]) -> tuple[int, int, int]:
    pairs = sum(d["count"] for d in got.values())
    unmatched = sum(d["unmatched_predictions"] for d in got.values())
    orphans = sum(d["orphan_labels"] for d in got.values())
    return pairs, unmatched, orphans


@pytest.mark.parametrize("mark_s", [330, 500])  # the prediction's window still open (330) or published (500)
def test_a_late_label_of_a_prediction_expired_unmatched_is_late_not_also_an_orphan(mark_s: int) -> None:
    f = Feed()
    f.pred("x", 0, 0.9)  # window [0, 60 s): expires unmatched once F > 300 s
    f.pred("far", mark_s + 120, 0.1)  # both watermarks at mark_s: F = mark_s
    f.label("far", mark_s + 120, False)
    assert f.joiner.final_ms == T0 + mark_s * S
    f.label("x", 290, True)  # 290 s from its prediction (within the horizon); its window [240, 300) not final
    got = f.finish()
    # by hand: x's prediction is unmatched (once), x's label is late (once), far is a pair
    assert _totals(got) == (1, 1, 0)
    assert got[(T0, "A")]["unmatched_predictions"] == 1
    assert all(d["orphan_labels"] == 0 for d in got.values())
    assert f.joiner.counters.counts == {"matched": 1, "duplicate": 0, "late": 1}


def test_a_late_prediction_of_a_label_expired_as_orphan_is_late_not_also_unmatched() -> None:
    f = Feed()
    f.label("y", 0, True)  # expires as an orphan once F > 300 s
    f.pred("far", 450, 0.1)
    f.label("far", 450, False)
    assert f.joiner.final_ms == T0 + 330 * S
    f.pred("y", 290, 0.9)  # within the horizon of its label; its window [240, 300) final only at F >= 600 s
    got = f.finish()
    assert _totals(got) == (1, 0, 1)  # y's label an orphan, y's prediction late, far a pair
    assert f.joiner.counters.counts == {"matched": 1, "duplicate": 0, "late": 1}


def test_a_label_past_the_horizon_of_an_expired_prediction_stays_an_orphan() -> None:
    f = Feed()
    f.pred("z", 0, 0.9)
    f.pred("far", 620, 0.1)
    f.label("far", 620, False)  # F = 500 s
    f.label("z", HORIZON_MS / S + 1, True)  # 301 s: no prediction within the horizon, window [300, 360) open
    got = f.finish()
    assert _totals(got) == (1, 1, 1)
    assert got[(T0 + 5 * WINDOW_MS, "")]["orphan_labels"] == 1
    assert f.joiner.counters.counts["late"] == 0


def test_a_time_beyond_what_a_timestamp_holds_is_a_bad_time_not_a_stuck_joiner() -> None:
    # 1e20 ms is past int64 (the state records' JSON): state_records raised on every poll, the session failed,
    # was rebuilt from the state topic, read the record again and failed again: the join never moved on
    f = Feed()
    far = prediction_record("big", T0, "A", 0.9, True) | {"predicted_at": 1e20}
    f.send(PREDICTIONS, far)
    f.send(LABELS, label_record("big2", T0, True) | {"labelled_at": 10**19})
    f.send(LABELS, label_record("neg", T0, True) | {"labelled_at": -(10**17)})  # before the year 1
    last = "9999-12-31T23:59:59.999Z"  # still a time (numbers are no times: the worker's event time refuses them)
    f.send(PREDICTIONS, prediction_record("edge", T0, "A", 0.9, True) | {"predicted_at": last})
    assert f.joiner.counters.skipped == {("predictions", "bad_time"): 1, ("labels", "bad_time"): 2}
    assert set(f.joiner.entries) == {"edge"}
    assert f.joiner.state_records("state")  # serialisable
