"""Where pandera departs from what a contract author would expect, the engine keeps pandera's verdict.

Pinned by the third red-team pass (docs/semantics.md, "The engine and pandera"): ``Check.str_matches(p)``
prefixes ``^`` to an unanchored pattern without grouping it, so ``Check.str_matches('a|b')`` is ``^a|b``
and ``'xb'`` passes. The reference is pandera itself, run on the compiled schema; the expected rows are
Python's ``re.search('^a|b', s)``.
"""

from __future__ import annotations

import re

import polars as pl
import pytest
from pandera.errors import SchemaErrors

from streams.contracts.loader import parse_contract

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: urn:test:quirks
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: s
        logicalType: string
        quality: [{type: custom, engine: pandera, implementation: "Check.str_matches('a|b')"}]
      - {name: n, logicalType: integer}
"""


def test_str_matches_alternation_is_anchored_as_pandera_anchors_it() -> None:
    values = ["ax", "xb", "xa", "b", "", "ba"]
    df = pl.DataFrame({"s": values, "n": list(range(len(values)))})
    c = parse_contract(CONTRACT, path="t.yaml")
    ours = sorted(int(i) for i in c.validate(df).failure_cases["index"].to_list())
    with pytest.raises(SchemaErrors) as info:
        c.to_pandera().validate(df, lazy=True)
    theirs = sorted(info.value.failure_cases["index"].to_list())
    expected = [i for i, v in enumerate(values) if re.search("^a|b", v) is None]
    assert ours == theirs == expected == [2, 4]
