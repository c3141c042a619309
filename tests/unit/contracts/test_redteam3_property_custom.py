"""A ``qstreams.*`` custom property on a *property* is read only for ``qstreams.drift``; the stream-time keys
(``qstreams.uniqueWithin``, ``qstreams.window``, …) are schema-level. Before, ``qstreams.uniqueWithin`` written next to
``unique: true`` (or a typo such as ``qstreams.drfit``) was silently ignored: lint said OK."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.contracts.loader import parse_contract
from streams.errors import ContractError
from streams.lint import lint_file

DOC = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:orders
version: 1.0.0
status: draft
schema:
  - name: orders
    properties:
      - name: id
        logicalType: string
        unique: true
        customProperties:
          - {{property: {key}, value: {value}}}
"""


@pytest.mark.parametrize(
    ("key", "hint"), [("qstreams.uniqueWithin", "schema object"), ("qstreams.drfit", "qstreams.drift")]
)
def test_property_level_stream_keys_are_refused_with_the_line(key: str, hint: str, tmp_path: Path) -> None:
    text = DOC.format(key=key, value="30d")
    with pytest.raises(ContractError) as info:
        parse_contract(text, path="c.yaml")
    message = str(info.value)
    assert message.startswith("c.yaml:13:") and key in message and hint in message
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert any(f.line == 13 and key in f.message and not f.note for f in lint_file(path))


def test_property_level_drift_and_foreign_keys_still_load() -> None:
    parse_contract(DOC.format(key="other.tool", value="x"), path="c.yaml")
