"""The demo's reference profiles: built at start from clean generated traffic, named in a copy of the contracts.

The worker judges a window for distribution drift (and, for a prediction contract, for prediction
confidence per ``model_version``) only when its contract names a reference profile
(``qstreams.reference``, docs/drift.md). The example contracts name none, so the demo copies them and
adds one per stream, built from 20,000 records of :mod:`streams.testing`'s generators: the same
generators as the demo's producers, so clean traffic matches its reference. The predictions contract
marks its prediction fields and binds its labels itself (``qstreams.prediction``); a copy of a contract
without that mapping gets :data:`PREDICTION_FIELDS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.testing import GeneratedRecords

__all__ = ["FEATURES_CONTRACT", "PREDICTIONS_CONTRACT", "PREDICTION_FIELDS", "with_references"]

FEATURES_CONTRACT = "card_transactions.odcs.yaml"
PREDICTIONS_CONTRACT = "fraud_predictions.odcs.yaml"
#: how the copied predictions contract marks its prediction fields (docs/drift.md, prediction monitoring)
PREDICTION_FIELDS = "{score: score, label: predicted_label, modelVersion: model_version, positiveLabel: fraud}"


def with_references(contracts: Path, workdir: Path) -> Path:
    """A copy of the contracts whose features and predictions contracts name a reference profile of clean
    generated traffic (``qstreams.reference``; the predictions contract also marks its prediction fields,
    ``qstreams.prediction``), so the worker judges every window for distribution drift and, per model
    version, for prediction confidence."""
    import shutil

    from streams.testing import generate_feature_records, generate_prediction_records

    target = workdir / "contracts"
    shutil.copytree(contracts, target)
    _add_reference(target, FEATURES_CONTRACT, "card_transactions.qsref", generate_feature_records(20_000, seed=101))
    _add_reference(
        target,
        PREDICTIONS_CONTRACT,
        "fraud_predictions.qsref",
        generate_prediction_records(20_000, seed=103),
        extra=(("qstreams.prediction", PREDICTION_FIELDS),),
    )
    return target


def _add_reference(
    target: Path, contract: str, reference: str, clean: GeneratedRecords, extra: tuple[tuple[str, str], ...] = ()
) -> None:
    """Name ``reference`` (built here from the ``clean`` generated records) in the copied ``contract``'s
    schema object, with the ``extra`` custom properties it does not declare yet (added to its custom
    properties, or in a new list); a contract that is absent or names a reference already is left as it is."""
    import polars as pl

    from streams.contracts.loader import load_contract
    from streams.profiles.reference import build_reference, save_reference

    path = target / contract
    if not path.exists():
        return
    marker, custom = "    physicalType: topic\n", "\n    customProperties:\n"  # the (first) schema object's
    text = path.read_text()
    if marker not in text or "qstreams.reference" in text:
        return
    props = [(k, v) for k, v in (("qstreams.reference", reference), *extra) if f"property: {k}\n" not in text]
    items = "".join(f"      - property: {k}\n        value: {v}\n" for k, v in props)
    if custom in text:  # the schema object has custom properties already (the predictions' binding): add to them
        text = text.replace(custom, custom + items, 1)
    else:
        text = text.replace(marker, marker + "    customProperties:\n" + items, 1)
    path.write_text(text)
    data = target.parent / f"{Path(reference).stem}.ndjson"
    pl.DataFrame(clean.records).write_ndjson(data)
    save_reference(build_reference(load_contract(path), None, [data]), target / reference)
