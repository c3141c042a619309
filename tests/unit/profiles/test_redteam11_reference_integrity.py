"""Red team 11: an *edited* reference file (its JSON changed and recompressed) must be refused at load, not judged.

A cut or flipped file fails zlib; an edited one decoded fine, and its counts were trusted: a histogram one bin short
raised ``ValueError`` in the KS statistic, a negative ``m2`` a ``TypeError`` (complex sd), a field deleted from the
profile was silently not judged, and edited counts gave verdicts of data that never existed."""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from streams.errors import ProfileError
from streams.profiles.codec import FORMAT_VERSION, MAGIC
from streams.profiles.drift import Verdict, drift_against
from streams.profiles.profile import profile_frame
from streams.profiles.reference import Reference, load_reference, save_reference
from tests.unit.profiles.drift_data import sample, spec_from

Edit = Callable[[dict[str, Any]], None]


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = body["profile"]["fields"]
    return fields


def _set(name: str, key: str, value: Any) -> Edit:
    return lambda b: _fields(b)[name].__setitem__(key, value)


EDITS: dict[str, Edit] = {
    "histogram_one_bin_short": lambda b: _set("x", "hist", _fields(b)["x"]["hist"][:-1])(b),
    "bin_count_raised": lambda b: _fields(b)["x"]["hist"].__setitem__(50, _fields(b)["x"]["hist"][50] + 3000),
    "value_count_lowered": _set("x", "count", 10),
    "negative_bin": lambda b: _fields(b)["x"]["hist"].__setitem__(50, -5),
    "negative_m2": _set("x", "m2", -1.0),
    "nan_m2": _set("x", "m2", "nan"),
    "minimum_above_maximum": _set("x", "min", 1e9),
    "negative_nulls": _set("x", "nulls", -100),
    "field_deleted": lambda b: _fields(b).pop("x"),
    "field_added": lambda b: _fields(b).__setitem__("zzz", _fields(b)["x"]),
    "kind_swapped": lambda b: _fields(b).__setitem__("channel", _fields(b)["x"]),
    "category_counts_scaled": lambda b: _set("channel", "counts", [c * 10 for c in _fields(b)["channel"]["counts"]])(b),
    "category_counts_negated": lambda b: _set("channel", "counts", [-c for c in _fields(b)["channel"]["counts"]])(b),
    "category_values_repeated": lambda b: _set("channel", "values", ["pos"] * len(_fields(b)["channel"]["values"]))(b),
    "rows_negative": lambda b: b["profile"].__setitem__("rows", -1),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], Any]:
    rng = np.random.default_rng(1)
    ref_df = sample(5000, rng)
    spec = spec_from(ref_df)
    reference = Reference("urn:test:drift@1.0.0", "0" * 64, "t", spec, profile_frame(ref_df, spec), "now", ("d",))
    path = tmp_path_factory.mktemp("ref") / "r.qsref"
    save_reference(reference, path)
    body = orjson.loads(zlib.decompress(path.read_bytes()[4:]))
    return path, body, profile_frame(sample(500, rng), spec)


def test_the_unedited_file_loads_and_judges(saved: tuple[Path, dict[str, Any], Any]) -> None:
    path, body, current = saved
    again = path.with_name("same.qsref")
    again.write_bytes(MAGIC + bytes([FORMAT_VERSION]) + zlib.compress(orjson.dumps(body)))  # recompressed, unedited
    report = drift_against(load_reference(again), current)
    assert {f.field: f.verdict for f in report.fields} == dict.fromkeys(("x", "amount", "hour", "channel"), Verdict.OK)


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_reference_is_refused_at_load_as_corrupt(saved: tuple[Path, dict[str, Any], Any], edit: str) -> None:
    path, body, _ = saved
    changed = copy.deepcopy(body)
    EDITS[edit](changed)
    target = path.with_name(f"{edit}.qsref")
    target.write_bytes(MAGIC + bytes([FORMAT_VERSION]) + zlib.compress(orjson.dumps(changed)))
    with pytest.raises(ProfileError) as info:
        load_reference(target)
    assert info.value.reason == "corrupt"
    assert "rebuild it" in str(info.value)
