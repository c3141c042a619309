"""The stream-time test contract with a reference profile (``qstreams.reference``), built from generated data."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from streams.contracts.loader import load_contract
from streams.contracts.model import Contract
from streams.contracts.stream import StreamSpec
from streams.profiles.monitor import DriftMonitor
from streams.profiles.reference import build_reference, save_reference
from streams.windows.plan import WindowPlan

from .helpers import CONTRACT, LATENESS_MS, T0, WINDOW_MS, frame

COUNTRIES = ["DE", "FR", "US"]


def reference_frame(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return frame(
        list(range(n)),
        [T0 + int(t) for t in rng.integers(0, 3_600_000, n)],
        [float(x) for x in rng.normal(40.0, 10.0, n)],
        [COUNTRIES[i] for i in rng.choice(3, n, p=[0.5, 0.3, 0.2])],
        [f"c{i}" for i in rng.integers(0, 50, n)],
    )


def write_contract(directory: Path, topic: str | None = None) -> Path:
    """The helpers' contract naming ``ref.qsref`` (built beside it) as its reference."""
    text = CONTRACT.replace(
        "      - property: qstreams.window\n",
        "      - property: qstreams.reference\n        value: ref.qsref\n      - property: qstreams.window\n",
        1,
    )
    if topic is not None:
        text = text.replace("physicalName: orders.v1", f"physicalName: {topic}")
    path = directory / "orders.odcs.yaml"
    path.write_text(text)
    data = directory / "reference.parquet"
    reference_frame(5_000).write_parquet(data)
    save_reference(build_reference(load_contract(path), None, [data]), directory / "ref.qsref")
    data.unlink()
    return path


@functools.cache
def drifting() -> tuple[Contract, DriftMonitor, WindowPlan]:
    """The contract, its drift monitor and its window plan (built once per test session)."""
    directory = Path(tempfile.mkdtemp(prefix="qs-drift-"))
    contract = load_contract(write_contract(directory))
    monitor = DriftMonitor.from_contract(contract)
    assert monitor is not None
    plan = WindowPlan.of(contract, contract.schema(), StreamSpec("event_ts", WINDOW_MS, LATENESS_MS, 3_600_000))
    return contract, monitor, plan
