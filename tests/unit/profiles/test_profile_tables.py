"""Text values counted from a field's table of known values (:mod:`streams.profiles.tables`) give the counts of
sorting: a value the table does not hold, even one landing on a known value's slot, sends the batch back to
sorting (every row's hash is checked), and nulls are left out."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import polars as pl

from streams.profiles import tables
from streams.profiles.fields import hash_strings
from streams.profiles.slices import profile_slices
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec
from streams.profiles.tables import HashTable, _lane

FIELD = "tables_test_country"
SPEC = ProfileSpec("urn:test@1.0.0", "t", (FieldSpec(FIELD, Kind.CATEGORICAL, cap=8),), kmv_k=3)


def check(values: list[str | None], ids: np.ndarray) -> None:
    got = profile_slices(pl.DataFrame({FIELD: pl.Series(values, dtype=pl.String)}), SPEC, ids, 2)
    for i in range(2):
        mine = [v for v, s in zip(values, ids.tolist(), strict=True) if s == i]
        held = Counter(v for v in mine if v is not None)
        p = got[i].categorical(FIELD)
        assert (p.count, p.nulls, dict(p.counts), p.other) == (sum(held.values()), mine.count(None), dict(held), 0)
        assert p.kmv == tuple(sorted(hash_strings(sorted(held))))[:3]


def test_known_values_are_counted_from_the_table_and_a_value_on_a_known_slot_is_not() -> None:
    tables.tables.pop(FIELD, None)
    rng = np.random.default_rng(3)
    known = ["FR", "DE", "ES", "IT"]
    first = [known[i] for i in rng.integers(0, 4, 200)]
    ids = rng.integers(-1, 2, 200)
    check(first, ids)  # sorted, and the table learnt
    table = tables.tables[FIELD]
    assert isinstance(table, HashTable) and table.hits == 0
    second = [None if j % 7 == 0 else v for j, v in enumerate(first[::-1])]
    check(second, ids)  # counted from the table (nulls taken off their slot)
    assert table.hits == 1
    slots = set(_lane(table.hashes, table.width, table.lane).tolist())
    intruder = next(  # a value not in the table whose hash lands on a known value's slot
        w for w in (f"x{j}" for j in itertools.count())
        if int(_lane(np.asarray(hash_strings([w]), dtype=np.uint64), table.width, table.lane)[0]) in slots
    )  # fmt: skip
    third = [*second[:-1], intruder]
    check(third, ids)  # the check sends it back to sorting: counted apart from the value it shares a slot with
    assert table.hits == 1
    learnt = tables.tables[FIELD]
    assert learnt is None or intruder in learnt.names
    check(third, ids)
