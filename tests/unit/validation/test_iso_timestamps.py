"""ISO-8601 text timestamps: what the engine accepts does not depend on the batch a value arrives in.

pandera-polars cannot coerce text to ``Datetime`` at all (polars 2 removed the String -> Datetime
cast; ``coerce=True`` reports the whole column), so the reference for text is polars'
``str.to_datetime`` with an inferred layout, which reads a space between date and time as ``T``,
with or without seconds. The engine parses a batch with Arrow when every value fits, else in the
layout of the batch's first value, then retries misfits with every layout of ``conform.ISO``. A
value Arrow read while the layouts missed it (``2026-01-02 03:04``, ``2026-01-02T03``) passed alone
on the stream and failed next to a bad value in a file.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from streams.cli.files import read_and_validate
from streams.contracts.loader import load_contract
from streams.validation.conform import arrow_timestamps, to_datetime

SHAPES = [
    "2026-01-02",
    "2026-01-02T03:04:05",
    "2026-01-02 03:04:05",
    "2026-01-02T03:04",
    "2026-01-02 03:04",
    "2026-01-02 03:04Z",
    "2026-01-02 03:04+01:00",
    "2026-01-02 03:04:05.123",
    "2026-01-02 03:04:05+01:00",
    "2026-01-02T03:04:05.123456789Z",
    "2026-01-02T03",
    "2026-01-02 03",
    "2026-01-02T03Z",
]
POLARS_ACCEPTS = [s for s in SHAPES if s[10:] not in ("T03", " 03", "T03Z")]


@pytest.mark.parametrize("zone", [None, "UTC"])
@pytest.mark.parametrize("text", SHAPES)
def test_arrow_and_the_layouts_agree_on_every_shape(text: str, zone: str | None) -> None:
    dst = pl.Datetime("us", zone)
    layouts = pl.DataFrame({"v": [text]}).select(to_datetime(pl.col("v"), pl.String(), dst)).item()
    fast = arrow_timestamps(pl.Series("v", [text]), dst)
    assert (fast.item() if fast is not None else layouts) == layouts
    assert (layouts is not None) == (text in POLARS_ACCEPTS) == _polars_reads(text), (text, layouts)


def _polars_reads(text: str) -> bool:
    """polars' ``str.to_datetime`` with the layout it infers (it cannot infer one for an hour alone)."""
    try:
        return pl.Series([text]).str.to_datetime(time_unit="us", strict=False).item() is not None
    except pl.exceptions.ComputeError:
        return False


@pytest.mark.parametrize("text", POLARS_ACCEPTS)
def test_a_space_between_date_and_time_passes_in_a_file_with_a_bad_row(tmp_path: Path, text: str) -> None:
    contract, data = tmp_path / "c.yaml", tmp_path / "d.csv"
    contract.write_text(
        "apiVersion: v3.1.0\nkind: DataContract\nid: urn:t:iso\nversion: 1.0.0\nstatus: draft\n"
        "schema:\n  - name: t\n    properties:\n      - name: ts\n        logicalType: timestamp\n"
    )
    data.write_text(f"ts\n{text}\nnot a time\n")
    loaded = load_contract(contract)
    _, report, _ = read_and_validate(data, loaded, loaded.schema())
    assert report.failure_cases.select("index", "failure_case").rows() == [(1, "not a time")]
