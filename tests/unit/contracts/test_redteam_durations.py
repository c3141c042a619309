"""Durations a YAML document can hold but no clock can (``.inf``, ``1e300``) are ``file:line`` errors.

Found by the red-team pass: ``qstreams.window: .inf`` raised ``OverflowError`` out of the loader (a traceback,
not a finding), and ``1e300`` seconds became a window of 10^303 ms, beyond int64 (window starts then overflow).
"""

from __future__ import annotations

import pytest

from streams.contracts.loader import parse_contract
from streams.contracts.stream import DurationError, parse_duration
from streams.errors import ContractSchemaError

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:durations
version: 1.0.0
status: active
schema:
  - name: t
    customProperties:
      - property: qstreams.window
        value: {value}
    properties:
      - {{name: x, logicalType: number}}
"""


@pytest.mark.parametrize("value", [".inf", "1.0e+300", "300000000000d"])
def test_impossible_windows_are_findings(value: str) -> None:
    with pytest.raises(ContractSchemaError) as info:
        parse_contract(CONTRACT.format(value=value), path="t.yaml")
    assert info.value.line == 11


@pytest.mark.parametrize("value", [float("inf"), 1e300, "99999999999999999999d"])
def test_parse_duration_refuses_what_int64_milliseconds_cannot_hold(value: object) -> None:
    with pytest.raises(DurationError):
        parse_duration(value)
    assert parse_duration("2d") == 172_800_000 and parse_duration(90) == 90_000
