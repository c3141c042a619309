"""SQL ``/`` is DuckDB's: a DOUBLE division, so a share over no row is NaN, which breaks every threshold.

Found by red team 10 (DuckDB as the oracle):

* polars SQL reads ``100.0`` as a decimal and raised ``division by zero`` on ``100.0 * COUNT(x) / COUNT(*)`` over a
  batch (or a ``WHERE``) without a row, so a percentage rule became an error verdict, which fails closed: every row
  of a batch without a matching row was quarantined. DuckDB divides a decimal in DOUBLE: the share is NaN.
* a NaN value passed ``mustNotBe`` and ``mustNotBeBetween`` (``not isclose(NaN, 0)``, ``not (0 <= NaN <= 10)``);
  NaN is no number, and breaks every threshold, as it already broke ``mustBeLessThan``.
"""

from __future__ import annotations

import math

import polars as pl
import pytest

from streams.contracts.loader import parse_contract

HEAD = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:sql-division
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - {name: x, logicalType: number}
      - {name: country, logicalType: string}
    quality:
"""
FRAME = pl.DataFrame({"x": [1.0, None, 3.0], "country": ["FR", "US", "FR"]})
SHARE = "SELECT 100.0 * COUNT(x) / COUNT(*) FROM t WHERE country = 'DE'"


@pytest.mark.parametrize(
    "threshold",
    ["mustBeLessThan: 50", "mustNotBe: 0", "mustNotBeBetween: [0, 10]", "mustBeGreaterOrEqualTo: 0", "mustBe: 0"],
)
def test_a_share_over_no_row_is_nan_and_fails(threshold: str) -> None:
    c = parse_contract(HEAD + f'      - {{name: share, type: sql, query: "{SHARE}", {threshold}}}\n', path="c.yaml")
    report = c.validate(FRAME)
    share = report.check("share")
    assert share.error is None, share.error  # no error verdict: nothing fails closed
    assert share.value is not None and math.isnan(share.value)
    assert not share.passed
    assert report.valid_mask.all()  # a batch metric quarantines no row


def test_a_share_over_rows_is_a_double() -> None:
    query = "SELECT 100.0 * COUNT(x) / COUNT(*) FROM t WHERE country = 'FR'"
    c = parse_contract(HEAD + f'      - {{name: share, type: sql, query: "{query}", mustBe: 100}}\n', path="c.yaml")
    share = c.validate(FRAME).check("share")
    assert share.value == pytest.approx(100.0) and share.passed
    assert isinstance(share.value, float)
