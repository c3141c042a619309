"""Window ``MIN`` / ``MAX`` over slices holding NaN merge as the engine computes them on one frame.

Found by the red-team pass: partial minima and maxima were merged with Python's ``min`` / ``max``, which with a
NaN return whichever came first: a slice whose values were all NaN (its MAX is NaN) merged with a slice whose MAX
is 1.0 gave NaN one way round (failing) and 1.0 the other, where polars, on the window as one frame, ignores NaN
unless every value is NaN (1.0, passing). The independent computation is ``Contract.validate`` on the window's
records as one frame.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl

from streams.contracts.loader import parse_contract
from streams.contracts.stream import StreamSpec
from streams.validation.engine import compile_plan
from streams.windows.codec import Partial, decode, encode
from streams.windows.finalize import finalize
from streams.windows.partial import merge_all
from streams.windows.plan import WindowPlan
from streams.windows.stream import StreamConfig, StreamTime

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:sql-nan
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - {name: x, logicalType: number}
    quality:
      - {name: biggest, type: sql, query: "SELECT MAX(x) FROM t", mustBeLessThan: 100}
      - {name: smallest, type: sql, query: "SELECT MIN(x) FROM t", mustBeGreaterThan: -100}
"""
NAN = math.nan


def _same(a: object, b: object) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def test_min_and_max_over_nan_slices_equal_the_window_as_one_frame() -> None:
    c = parse_contract(CONTRACT, path="t.yaml")
    plan = WindowPlan.of(c, c.schema(), StreamSpec(None, 60_000, 0, 3_600_000))
    for slices in ([[NAN], [1.0]], [[NAN, NAN], [None], [-3.0, 2.0]], [[NAN], [NAN]], [[5.0], [NAN, None]]):
        for order in itertools.permutations(range(len(slices))):
            st = StreamTime(plan, StreamConfig(60_000, 0, 1_000, 10**12, 3_600_000), len(slices))
            sent = []
            for part in order:
                xs = slices[part]
                df = pl.DataFrame({"x": pl.Series(xs, dtype=pl.Float64)})
                out = st.process(
                    c.validate(df), compile_plan(c).conform(df), np.full(len(xs), part), np.arange(len(xs)),
                    np.full(len(xs), 1_000), now_ms=2_000,
                )  # fmt: skip
                sent += [decode(encode(r)) for r in out.records if isinstance(r, Partial)]
            window = merge_all(p.partial for p in sent)  # type: ignore[union-attr]
            assert window is not None
            verdict = finalize(plan, window)
            whole = c.validate(pl.DataFrame({"x": pl.Series([x for xs in slices for x in xs], dtype=pl.Float64)}))
            for name in ("biggest", "smallest"):
                got, expected = verdict.check(name).result, whole.check(name)
                assert got.passed == expected.passed and _same(got.value, expected.value), (slices, order, name)
