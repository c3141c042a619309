"""A small contract exercising every window rule kind, and a reference simulation of a stream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.contracts.stream import StreamSpec
from streams.windows.batch import Marks, annotate, batch_partials, eligible
from streams.windows.clock import PartitionClock, event_times
from streams.windows.hashing import stable_hash
from streams.windows.partial import WindowKey, WindowPartial, absorb
from streams.windows.plan import WindowPlan
from streams.windows.unique import UniqueState

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:orders
version: 1.2.0
status: active
schema:
  - name: orders
    physicalName: orders.v1
    customProperties:
      - property: qstreams.eventTime
        value: event_ts
      - property: qstreams.window
        value: 10s
      - property: qstreams.allowedLateness
        value: 2s
    properties:
      - name: id
        logicalType: integer
        primaryKey: true
      - name: event_ts
        logicalType: timestamp
        required: true
      - name: amount
        logicalType: number
        logicalTypeOptions:
          minimum: 0
        quality:
          - name: amount_nulls
            type: library
            metric: nullValues
            mustBeLessThan: 20
            unit: percent
            severity: warning
      - name: country
        logicalType: string
        quality:
          - name: country_known
            type: library
            metric: invalidValues
            arguments:
              validValues: [DE, FR, US]
            mustBeLessOrEqualTo: 2
      - name: code
        logicalType: string
        quality:
          - name: code_duplicates
            type: library
            metric: duplicateValues
            mustBeLessOrEqualTo: 1
    quality:
      - name: enough_rows
        type: library
        metric: rowCount
        mustBeGreaterOrEqualTo: 4
      - name: big_share
        type: sql
        query: "SELECT 100.0 * SUM(CASE WHEN amount > 50 THEN 1 ELSE 0 END) / COUNT(*) FROM orders"
        mustBeLessThan: 40
      - name: mean_amount
        type: sql
        query: "SELECT AVG(amount) FROM orders WHERE country = 'DE'"
        mustBeLessThan: 60
        severity: warning
      - name: countries
        type: sql
        query: "SELECT COUNT(DISTINCT country) FROM orders"
        mustBeLessOrEqualTo: 3
"""

WINDOW_MS = 10_000
LATENESS_MS = 2_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def contract() -> Contract:
    return parse_contract(CONTRACT, path="orders.yaml")


def plan() -> WindowPlan:
    c = contract()
    spec = StreamSpec("event_ts", WINDOW_MS, LATENESS_MS, 3_600_000)
    return WindowPlan.of(c, c.schema(), spec)


def frame(
    ids: list[int | None],
    ts: list[int],
    amounts: list[float | None],
    countries: list[str | None],
    codes: list[str | None],
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": pl.Series(ids, dtype=pl.Int64),
            "event_ts": pl.Series(
                [datetime.fromtimestamp(t / 1000, tz=UTC) for t in ts], dtype=pl.Datetime("us", "UTC")
            ),
            "amount": pl.Series(amounts, dtype=pl.Float64),
            "country": pl.Series(countries, dtype=pl.String),
            "code": pl.Series(codes, dtype=pl.String),
        }
    )


@dataclass
class Stream:
    """The worker-side state the stream-time observers keep, for one source topic."""

    plan: WindowPlan
    clocks: dict[int, PartitionClock]
    unique: dict[tuple[str, int], UniqueState]
    windows: dict[WindowKey, WindowPartial]
    marks: list[tuple[pl.DataFrame, Marks, np.ndarray, dict[str, np.ndarray]]]

    @classmethod
    def new(cls, p: WindowPlan) -> Stream:
        return cls(p, {}, {}, {}, [])

    def batch(
        self, df: pl.DataFrame, partitions: np.ndarray, offsets: np.ndarray, now_ms: int
    ) -> dict[WindowKey, WindowPartial]:
        p = self.plan
        report = p.contract.validate(df)
        from streams.validation.engine import compile_plan

        conformed = compile_plan(p.contract).conform(df)
        times = event_times(conformed, "event_ts", np.zeros(df.height, dtype=np.int64))
        marks, self.clocks = annotate(
            self.clocks,
            partitions,
            offsets,
            times.ms,
            now_ms=now_ms,
            window_ms=WINDOW_MS,
            lateness_ms=LATENESS_MS,
            max_skew_ms=3_600_000,
        )
        ok = eligible(report, p)
        fails: dict[str, np.ndarray] = {}
        for rp in p.stream_unique:
            column = str(rp.rule.column)
            hashes, nulls = stable_hash(conformed.get_column(column))
            f = np.zeros(df.height, dtype=bool)
            for part in np.unique(partitions):
                rows = np.flatnonzero(partitions == part)
                state = self.unique.setdefault((column, int(part)), UniqueState(3_600_000))
                f[rows] = state.judge(hashes[rows], nulls[rows], offsets[rows], ok[rows])
            fails[rp.rule.name] = f
        valid = ok & ~np.logical_or.reduce(list(fails.values()), initial=False) if fails else ok
        for rp in p.stream_unique:
            column = str(rp.rule.column)
            hashes, nulls = stable_hash(conformed.get_column(column))
            for part in np.unique(partitions):
                rows = np.flatnonzero((partitions == part) & valid)
                self.unique[(column, int(part))].claim(hashes[rows], nulls[rows], offsets[rows], marks.event_ms[rows])
        partials = batch_partials(p, WINDOW_MS, marks, frame=conformed, report=report, valid=valid, unique_fails=fails)
        for key, part in partials.items():
            self.windows[key], why = absorb(self.windows.get(key), part)
            assert why is None, why
        self.marks.append((df, marks, valid, fails))
        return partials
