"""``multipleOf`` on numbers is judged on the decimal values a contract and JSON write, as JSON Schema does.

Found by the red-team pass: the check was ``x % m == 0`` in binary floating point, so ``19.99`` was not a
multiple of ``0.01``, nor ``0.3`` of ``0.1``, nor ``0.0075`` of ``0.0001`` (a case of the official JSON
Schema test suite, ``multipleOf.json``, "by small number": valid): a price field declared ``multipleOf: 0.01``
quarantined most prices. The independent computation is exact decimal arithmetic on the values' shortest
text (``Decimal(repr(x)) % Decimal(repr(m)) == 0``), and the JSON Schema test suite's verdicts.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts.loader import parse_contract


def _contract(multiple: object, logical: str = "number") -> str:
    return f"""
apiVersion: v3.1.0
kind: DataContract
id: urn:test:multiple
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: x
        logicalType: {logical}
        logicalTypeOptions: {{multipleOf: {multiple}}}
      - name: y
        logicalType: string
"""


def _failing(multiple: object, values: list, logical: str = "number", dtype: pl.DataType = pl.Float64) -> list[int]:
    c = parse_contract(_contract(multiple, logical), path="t.yaml")
    df = pl.DataFrame({"x": pl.Series(values, dtype=dtype), "y": ["a"] * len(values)})
    report = c.validate(df)
    return sorted(int(i) for i in report.failure_cases.filter(pl.col("column") == "x")["index"].to_list())


# (multipleOf, value, valid) from JSON-Schema-Test-Suite tests/draft2020-12/multipleOf.json
SUITE = [
    (2, 10, True), (2, 7, False),
    (1.5, 0, True), (1.5, 4.5, True), (1.5, 35, False),
    (0.0001, 0.0075, True), (0.0001, 0.00751, False),
    (0.123456789, 1e308, False),  # "float division = inf"
    ("0.00000001", 12391239123, True),  # "small multiple of large integer" (1e-8; YAML 1.1 reads 1e-8 as text)
]  # fmt: skip


@pytest.mark.parametrize(("multiple", "value", "valid"), SUITE)
def test_json_schema_test_suite(multiple: object, value: float, valid: bool) -> None:
    assert _failing(multiple, [float(value)]) == ([] if valid else [0])


def test_prices_in_cents_are_multiples_of_a_cent() -> None:
    prices = [19.99, 0.07, 100.01, 0.29, 1.1, 0.295, 3.333, -4.56]
    assert _failing(0.01, prices) == [5, 6]
    assert _failing(0.1, [0.3, 0.7, 2.3, 3.3, 0.35, -0.3]) == [4]


def test_integers_stay_exact() -> None:
    assert _failing(3, [3, 6, 2**53 + 1, 2**53 + 2, -3, 7], "integer", pl.Int64) == [3, 5]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["0.01", "0.1", "0.05", "0.25", "0.5", "0.001", "2.5", "0.0001"]),
    st.lists(st.integers(-(10**7), 10**7), min_size=1, max_size=8),
    st.lists(st.integers(1, 9), min_size=1, max_size=8),
)
def test_decimal_multiples_pass_and_others_fail(multiple: str, units: list[int], nudges: list[int]) -> None:
    """Values written in decimal, ``k * m`` (a multiple) or ``k * m + m * d / 10`` (not one), as JSON carries them."""
    m = Decimal(multiple)
    texts = [str(k * m) for k in units] + [str(k * m + m * d / 10) for k, d in zip(units, nudges, strict=False)]
    values = [float(t) for t in texts]
    expected = [i for i, v in enumerate(values) if Decimal(repr(v)) % Decimal(repr(float(m))) != 0]
    assert _failing(float(m), values) == expected
