"""``contracts diff`` of type changes the engine does not read as widenings (red team 9).

* ``integer`` (int64) → ``number`` (double) was ``type_widened`` (consumers only), but the engine refuses an integer the
  cast to double would round (above 2**53, as the float32 branch already knew for 2**24): a record valid under the old
  contract fails the new one, so producers break too (``type_changed``); ``int32`` → ``number`` still widens.
* ``timestamp`` (us) → ``timestamp(ns)`` was ``type_widened``, but nanoseconds span only 1677-2262: a
  ``9999-12-31`` valid under microseconds is refused under nanoseconds (``type_changed``, both ways).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from streams.contracts.diff import ChangeKind, diff_contracts
from streams.contracts.loader import parse_contract

TEXT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:types
version: {version}
status: active
schema:
  - name: orders
    properties:
      - {{name: x, {prop}}}
"""


def contract(prop: str, version: str = "1.0.0"):
    return parse_contract(TEXT.format(version=version, prop=prop), path=f"{version}.yaml")


def valid(contract_, frame: pl.DataFrame) -> bool:
    return contract_.validate(frame).passed


BIG = pl.DataFrame({"x": [2**53 + 1]})  # an int64 a double cannot hold
FAR = pl.DataFrame({"x": [dt.datetime(9999, 12, 31)]})  # an end-of-validity sentinel, beyond 2262


@pytest.mark.parametrize(
    ("old", "new", "witness"),
    [
        ("logicalType: integer", "logicalType: number", BIG),
        ("logicalType: timestamp", "logicalType: timestamp, physicalType: timestamp(ns)", FAR),
        ("logicalType: timestamp, physicalType: timestamp(ms)", "logicalType: timestamp, physicalType: timestamp(ns)",
         FAR),
    ],
    ids=["integer-to-number", "us-to-ns", "ms-to-ns"],
)  # fmt: skip
def test_a_type_change_that_refuses_records_the_old_type_took_breaks_producers(old: str, new: str, witness):
    before, after = contract(old), contract(new, "2.0.0")
    assert valid(before, witness) and not valid(after, witness)  # the engine's verdicts
    (change,) = diff_contracts(before, after).changes
    assert change.kind is ChangeKind.TYPE_CHANGED and change.breaks_producers and change.breaks_consumers
    # and back: the record the new contract refused is one the old took, so consumers of the reverse break
    (back,) = diff_contracts(after, before).changes
    assert back.kind is ChangeKind.TYPE_CHANGED and back.breaks_consumers


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("logicalType: integer, physicalType: int32", "logicalType: number", ChangeKind.TYPE_WIDENED),
        ("logicalType: number", "logicalType: integer, physicalType: int32", ChangeKind.TYPE_NARROWED),
        ("logicalType: timestamp, physicalType: timestamp(ms)", "logicalType: timestamp", ChangeKind.TYPE_WIDENED),
    ],
)
def test_exact_widenings_stay_widenings(old: str, new: str, kind: ChangeKind) -> None:
    (change,) = diff_contracts(contract(old), contract(new, "2.0.0")).changes
    assert change.kind is kind
