"""``contracts diff`` of a schema object renamed on the same topic (red team 9): schema objects are matched by name,
so a rename was ``schema_removed`` (consumers) plus ``schema_added`` (nobody), and what the new object asks of the
topic's records was never compared: a field made required, refusing records the old object took, did not break
producers. The renamed object is now compared with the one it replaces on that topic."""

from __future__ import annotations

import polars as pl

from streams.contracts.diff import ChangeKind, diff_contracts
from streams.contracts.loader import parse_contract

TEXT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:rename
version: {version}
status: active
schema:
  - name: {name}
    physicalName: shop.orders
    properties:
      - {{name: id, logicalType: string, required: {required}}}
"""


def contract(name: str, required: bool, version: str):
    return parse_contract(TEXT.format(name=name, required=str(required).lower(), version=version), path=version)


def test_a_schema_object_renamed_on_its_topic_is_compared_with_the_one_it_replaces() -> None:
    before, after = contract("orders", False, "1.0.0"), contract("orders_v2", True, "2.0.0")
    record = pl.DataFrame({"id": [None]}, schema={"id": pl.String})
    assert before.validate(record).passed and not after.validate(record).passed  # the engine refuses it now
    diff = diff_contracts(before, after)
    kinds = {(c.kind, c.subject) for c in diff.changes}
    assert (ChangeKind.REQUIRED_ADDED, "id") in kinds, diff.changes
    assert diff.as_dict()["breaking_for_producers"] is True
    assert {ChangeKind.SCHEMA_REMOVED, ChangeKind.SCHEMA_ADDED} <= {c.kind for c in diff.changes}


def test_a_pure_rename_on_the_same_topic_reports_only_the_rename() -> None:
    diff = diff_contracts(contract("orders", True, "1.0.0"), contract("orders_v2", True, "2.0.0"))
    assert sorted(str(c.kind) for c in diff.changes) == ["schema_added", "schema_removed"]
    assert not any(c.breaks_producers for c in diff.changes)
