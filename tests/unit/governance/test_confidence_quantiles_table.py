"""The governance confidence table (``confidence.parquet`` of an evidence bundle) keeps the 10th, 50th and 90th
percentiles of each window's confidence from the events' ``confidence_distribution``: null for events of older
workers (no distribution), for a version without a valid score, and for a distribution of the wrong shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from cloudevents.core.v1.event import CloudEvent

from streams.contracts.model import Contract
from streams.events.codec import validate_event
from streams.governance.archive import Archive, read_archive
from streams.governance.tables import confidence_table
from streams.profiles.confidence import confidence_distribution

from .scenario import confidence
from .test_archive import NOW, records


def _with(event: CloudEvent, distribution: object) -> CloudEvent:
    data = event.get_data()
    assert isinstance(data, dict)
    data["confidence_distribution"] = distribution
    return event


def test_confidence_table_keeps_the_confidence_percentiles(tmp_path: Path, contract: Contract) -> None:
    hist = np.random.default_rng(3).multinomial(500, [0.01] * 100).tolist()
    dist = confidence_distribution(hist)
    events = [
        _with(confidence(contract, 0, "fraud-v4"), dist),
        confidence(contract, 1, "fraud-v4"),  # an older worker's event: no distribution
        _with(confidence(contract, 2, "fraud-v4"), confidence_distribution([0] * 100)),  # no valid score
        _with(confidence(contract, 3, "fraud-v4"), "wide"),  # not an object: counts as absent
    ]
    for event in events[:3]:
        validate_event(event)
    root = tmp_path / "archive"
    with Archive(root) as archive:
        archive.ingest(records(events), now=NOW)
    table = confidence_table(read_archive(root)).sort("window_start")
    quantiles = dist["confidence_quantiles"]
    assert table.select("confidence_p10", "confidence_p50", "confidence_p90").rows() == [
        (quantiles["p10"], quantiles["p50"], quantiles["p90"]), (None, None, None), (None, None, None),
        (None, None, None),
    ]  # fmt: skip
    assert table.schema["confidence_p50"] == pl.Float64 and 0.5 < quantiles["p10"] < quantiles["p90"] < 1.0
