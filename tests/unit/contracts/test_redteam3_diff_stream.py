"""``contracts diff`` of the stream-time settings (``qstreams.*`` schema-level custom properties): they change what
the worker refuses (``uniqueWithin``: how long a unique value stays claimed) and what every window verdict covers
(``window``, ``allowedLateness``, ``eventTime``). Before, any change of them was an unclassified patch."""

from __future__ import annotations

import pytest

from streams.contracts.diff import ChangeKind, diff_contracts
from streams.contracts.loader import parse_contract
from streams.contracts.semver import Bump

HEAD = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:orders
version: {version}
status: active
team: {{name: shop}}
schema:
  - name: orders
    properties:
      - {{name: id, logicalType: string, {flags}}}
      - {{name: ts, logicalType: timestamp}}
      - {{name: ts2, logicalType: timestamp}}
"""


def contract(props: str, version: str = "1.0.0", flags: str = "primaryKey: true"):
    text = HEAD.format(version=version, flags=flags)
    if props:
        text += "    customProperties:\n" + "".join(
            f"      - {{property: qstreams.{k}, value: {v}}}\n" for k, v in (p.split("=") for p in props.split(","))
        )
    return parse_contract(text, path=f"{version}.yaml")


@pytest.mark.parametrize(
    ("old", "new", "kind", "producers", "consumers"),
    [
        ("uniqueWithin=1h", "uniqueWithin=30d", ChangeKind.UNIQUE_HORIZON_LENGTHENED, True, False),
        ("uniqueWithin=30d", "uniqueWithin=1h", ChangeKind.UNIQUE_HORIZON_SHORTENED, False, True),
        ("", "uniqueWithin=7d", ChangeKind.UNIQUE_HORIZON_CHANGED, True, True),  # from the deployment's default
        ("window=1m", "window=5m", ChangeKind.STREAM_TIME_CHANGED, True, True),
        ("allowedLateness=30s", "allowedLateness=5s", ChangeKind.STREAM_TIME_CHANGED, True, True),
        ("eventTime=ts", "eventTime=ts2", ChangeKind.STREAM_TIME_CHANGED, True, True),
    ],
)
def test_stream_time_settings_are_classified(old: str, new: str, kind: ChangeKind, producers: bool, consumers: bool):
    diff = diff_contracts(contract(old), contract(new, "1.1.0"))
    changes = [c for c in diff.changes if c.kind is kind]
    assert len(changes) == 1, diff.changes
    change = changes[0]
    assert (change.breaks_producers, change.breaks_consumers) == (producers, consumers)
    assert change.bump is Bump.MAJOR and change.line is not None
    assert not diff.semver().ok  # 1.0.0 -> 1.1.0 is too small


def test_unique_horizon_without_unique_fields_breaks_nobody() -> None:
    diff = diff_contracts(contract("uniqueWithin=1h", flags="required: true"),
                          contract("uniqueWithin=30d", "1.1.0", flags="required: true"))  # fmt: skip
    assert [c.kind for c in diff.changes] == [ChangeKind.UNIQUE_HORIZON_LENGTHENED]
    assert not diff.changes[0].breaking and diff.semver().ok  # a minor step suffices
    assert "3600s" not in diff.changes[0].message and "1h → 30d" in diff.changes[0].message


def test_equal_durations_written_differently_are_no_change() -> None:
    diff = diff_contracts(contract("uniqueWithin=1d,window=60s"), contract("uniqueWithin=24h,window=1m", "1.0.1"))
    assert diff.changes == ()
