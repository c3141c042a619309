"""Reference profiles: streamed builds from files, the versioned file, the contract link and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from streams.cli.profile import profile_app
from streams.contracts.loader import load_contract
from streams.errors import ContractError, DataFormatError, ProfileError
from streams.profiles.profile import profile_frame
from streams.profiles.properties import drift_overrides, prediction_spec, reference_path
from streams.profiles.reference import build_reference, load_reference, save_reference
from streams.testing import generate_feature_frame, generate_prediction_records

ROOT = Path(__file__).resolve().parents[3]
FEATURES = ROOT / "contracts" / "card_transactions.odcs.yaml"
PREDICTIONS = ROOT / "contracts" / "fraud_predictions.odcs.yaml"


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return generate_feature_frame(6_000, seed=5)


@pytest.mark.parametrize("fmt", ["parquet", "ndjson", "csv"])
def test_streamed_build_equals_the_in_memory_profile(tmp_path, frame, fmt):
    path = tmp_path / f"ref.{fmt}"
    getattr(frame, f"write_{fmt}")(path)
    contract = load_contract(FEATURES)
    passes: list[tuple[int, int]] = []
    ref = build_reference(contract, None, [path], batch_rows=700, progress=lambda p, n: passes.append((p, n)))
    assert passes[-1] == (2, 6_000) and max(n for p, n in passes if p == 1) == 6_000
    assert len([1 for p, _ in passes if p == 2]) >= 9  # really read in batches of 700
    whole = profile_frame(frame, ref.spec)  # one in-memory pass on the same bins
    assert ref.profile.rows == whole.rows == 6_000
    for name, w in whole.fields.items():
        got = ref.profile.fields[name]
        assert (got.count, got.nulls) == (w.count, w.nulls), name
        if hasattr(w, "hist"):
            assert got.hist == w.hist and got.min == w.min and got.max == w.max, name
            assert got.mean == pytest.approx(w.mean, rel=1e-9), name
        elif not w.truncated:  # exact below the category cap
            assert got.counts == w.counts and got.kmv == w.kmv and got.other == 0, name
        else:  # identifiers beyond the cap: top-k + other, distinct sketch still exact-merge
            assert sum(n for _, n in got.counts) + got.other == got.count and got.kmv == w.kmv, name


def test_bin_edges_are_reference_quantiles_within_kll_error(tmp_path, frame):
    path = tmp_path / "ref.parquet"
    frame.write_parquet(path)
    ref = build_reference(load_contract(FEATURES), None, [path], bins=20)
    values = frame["amount_eur"].drop_nulls().sort()
    edges = ref.spec.field("amount_eur").edges
    assert edges[0] == values.min() and edges[-1] == values.max()
    inner = [e for e in edges if e in set(_quantile_edges(ref))]
    assert len(inner) == 19 and len(edges) == 21 + 2 * 7  # 19 quantiles; the 2 outer bins split in 8
    for i, edge in enumerate(inner, start=1):
        rank = values.search_sorted(edge, side="right") / len(values)
        assert abs(rank - i / 20) <= 0.02  # KLL k=400: ~0.8% normalized rank error at 99% confidence


def test_reference_file_round_trip_and_refusals(tmp_path, frame):
    data = tmp_path / "ref.parquet"
    frame.write_parquet(data)
    features = load_contract(FEATURES)
    ref = save_reference(build_reference(features, None, [data]), tmp_path / "f.qsref")
    loaded = load_reference(tmp_path / "f.qsref", contract=features)
    assert loaded.profile == ref.profile and loaded.sha256 == ref.sha256 and len(ref.sha256) == 64
    assert loaded.contract == "urn:datacontract:payments:card-transactions@1.4.0"
    assert loaded.contract_sha256 == features.sha256
    with pytest.raises(ProfileError, match="another contract") as err:
        load_reference(tmp_path / "f.qsref", contract=load_contract(PREDICTIONS))
    assert err.value.reason == "contract"
    bumped = tmp_path / "bumped.yaml"
    bumped.write_text(FEATURES.read_text().replace("version: 1.4.0", "version: 1.5.0", 1))
    with pytest.raises(ProfileError, match="another version of this contract"):
        load_reference(tmp_path / "f.qsref", contract=load_contract(bumped))
    blob = (tmp_path / "f.qsref").read_bytes()
    (tmp_path / "cut.qsref").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ProfileError) as err:
        load_reference(tmp_path / "cut.qsref")
    assert err.value.reason == "corrupt" and "cut.qsref" in str(err.value)
    with pytest.raises(ProfileError, match="Cannot read"):
        load_reference(tmp_path / "missing.qsref")
    with pytest.raises(DataFormatError, match="extension"):
        (tmp_path / "data.xlsx").write_bytes(b"PK")
        build_reference(features, None, [tmp_path / "data.xlsx"])


def _quantile_edges(ref) -> tuple[float, ...]:
    """The edges that are not tail refinements: refine_tails adds only points inside the two outer bins."""
    edges = ref.spec.field("amount_eur").edges
    lo_bin, hi_bin = (edges[0], edges[8]), (edges[-9], edges[-1])
    return tuple(e for e in edges[8:-8]) if lo_bin[1] < hi_bin[0] else edges


def _prediction_contract(tmp_path: Path) -> Path:
    # the example contract's own schema-level custom properties (its labels binding) make way for this test's
    text = re.sub(r"\n    customProperties:\n(?: {6}.*\n)+", "\n", PREDICTIONS.read_text())
    marker = "    physicalType: topic\n"
    extra = (
        "    customProperties:\n"
        "      - property: qstreams.reference\n"
        "        value: refs/predictions.qsref\n"
        "      - property: qstreams.prediction\n"
        "        value: {score: score, label: predicted_label, modelVersion: model_version, positiveLabel: fraud}\n"
    )
    text = text.replace(marker, marker + extra, 1)
    text = text.replace(
        "      - name: latency_ms\n",
        "      - name: latency_ms\n        customProperties:\n          - property: qstreams.drift\n"
        "            value: {method: psi, threshold: 0.2}\n",
        1,
    )
    path = tmp_path / "predictions.odcs.yaml"
    path.write_text(text)
    return path


def test_contract_custom_properties_and_prediction_reference(tmp_path):
    path = _prediction_contract(tmp_path)
    contract = load_contract(path)
    assert reference_path(contract, "card_fraud_predictions") == tmp_path / "refs" / "predictions.qsref"
    spec = prediction_spec(contract, "card_fraud_predictions")
    assert spec is not None and (spec.score, spec.label, spec.positive_label) == ("score", "predicted_label", "fraud")
    assert drift_overrides(contract, "card_fraud_predictions") == {"latency_ms": {"method": "psi", "threshold": 0.2}}
    assert reference_path(load_contract(FEATURES), "card_transactions") is None
    records = generate_prediction_records(3_000, seed=3).records
    data = tmp_path / "preds.ndjson"
    pl.DataFrame(records).write_ndjson(data)
    ref = build_reference(contract, None, [data])
    (model,) = ref.profile.models.values()
    assert model.count == 3_000 and dict(model.labels).keys() <= {"fraud", "legit"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("score: score,", "score: probability,"))
    with pytest.raises(ContractError, match="not a property"):
        prediction_spec(load_contract(bad), "card_fraud_predictions")


def test_cli_build_and_show(tmp_path, frame):
    app = typer.Typer()
    app.add_typer(profile_app, name="profile")
    runner = CliRunner()
    data = tmp_path / "ref.parquet"
    frame.write_parquet(data)
    out = tmp_path / "f.qsref"
    built = runner.invoke(app, ["profile", "build", str(data), "--contract", str(FEATURES), "-o", str(out)])
    assert built.exit_code == 0, built.output
    assert "6,000 rows" in built.output and out.exists()
    shown = runner.invoke(app, ["profile", "show", str(out), "--contract", str(FEATURES), "--json"])
    assert shown.exit_code == 0, shown.output
    assert '"field": "amount_eur"' in shown.output and load_reference(out).sha256 in shown.output
    wrong = runner.invoke(app, ["profile", "show", str(out), "--contract", str(PREDICTIONS)])
    assert wrong.exit_code == 2 and "another contract" in wrong.output
    out.write_bytes(b"garbage")
    corrupt = runner.invoke(app, ["profile", "show", str(out)])
    assert corrupt.exit_code == 2 and "not a quality-streams reference" in corrupt.output
    no_target = runner.invoke(app, ["profile", "build", str(data), "--contract", str(FEATURES)])
    assert no_target.exit_code == 2 and "qstreams.reference" in no_target.output
    contract = _prediction_contract(tmp_path)
    records = tmp_path / "preds.ndjson"
    pl.DataFrame(generate_prediction_records(500, seed=1).records).write_ndjson(records)
    default = runner.invoke(app, ["profile", "build", str(records), "--contract", str(contract)])
    assert default.exit_code == 0, default.output
    assert (tmp_path / "refs" / "predictions.qsref").exists()


def test_drift_monitor_binds_the_contract_reference(tmp_path):
    from streams.profiles.monitor import DriftMonitor

    path = _prediction_contract(tmp_path)
    contract = load_contract(path)
    assert DriftMonitor.from_contract(load_contract(FEATURES)) is None  # no qstreams.reference
    records = pl.DataFrame(generate_prediction_records(4_000, seed=8).records)
    data = tmp_path / "preds.parquet"
    records.write_parquet(data)
    (tmp_path / "refs").mkdir()
    save_reference(build_reference(contract, None, [data]), tmp_path / "refs" / "predictions.qsref")
    monitor = DriftMonitor.from_contract(contract)
    assert monitor is not None and monitor.overrides == {"latency_ms": {"method": "psi", "threshold": 0.2}}
    same = pl.DataFrame(generate_prediction_records(3_000, seed=9).records)
    window = monitor.empty().merge(monitor.profile(same[:1000])).merge(monitor.profile(same[1000:]))
    report = monitor.drift(window)
    assert report.reference_sha256 == monitor.reference.sha256
    assert report.field("latency_ms").method.value == "psi"
    assert report.drifted == (), report.drifted
    slow = same.with_columns(pl.col("latency_ms") * 3)
    assert "latency_ms" in monitor.drift(monitor.profile(slow)).drifted
    (model,) = monitor.models(window)
    assert model.model_version == "3.2.1" and model.verdict == "ok"
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("{method: psi, threshold: 0.2}", "{method: chi2}"))
    with pytest.raises(ContractError, match="does not apply to numeric"):
        DriftMonitor.from_contract(load_contract(bad))


def test_cli_drift_exit_codes(tmp_path):
    import json as _json

    app = typer.Typer()
    app.add_typer(profile_app, name="profile")
    runner = CliRunner()
    ref_data, same, shifted = tmp_path / "ref.parquet", tmp_path / "same.parquet", tmp_path / "shifted.csv"

    def frame(n: int, seed: int) -> pl.DataFrame:  # the generator's hours depend on the seed: spread them
        return generate_feature_frame(n, seed=seed).with_columns(
            (pl.int_range(n) % 24).cast(pl.Int8).alias("hour_of_day")
        )

    frame(8_000, 11).write_parquet(ref_data)
    frame(3_000, 12).write_parquet(same)
    moved = frame(3_000, 13).with_columns(pl.col("amount_eur") * 1.5)
    moved.drop("event_ts").write_csv(shifted)
    out = tmp_path / "f.qsref"
    assert runner.invoke(app, ["profile", "build", str(ref_data), "-c", str(FEATURES), "-o", str(out)]).exit_code == 0
    ok = runner.invoke(app, ["profile", "drift", str(same), "-c", str(FEATURES), "-r", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "0 of 20 fields drifted" in ok.output
    bad = runner.invoke(app, ["profile", "drift", str(shifted), "-c", str(FEATURES), "-r", str(out), "--json"])
    assert bad.exit_code == 1, bad.output
    report = _json.loads(bad.output)
    assert report["reference_sha256"] == load_reference(out).sha256
    assert "amount_eur" in [f["field"] for f in report["fields"] if f["verdict"] == "drift"]
    missing = runner.invoke(app, ["profile", "drift", str(same), "-c", str(FEATURES)])
    assert missing.exit_code == 2 and "qstreams.reference" in missing.output


def test_lint_checks_the_reference_and_prediction_properties(tmp_path):
    from streams.lint import lint_file

    path = _prediction_contract(tmp_path)
    missing = [f.message for f in lint_file(path) if not f.note]
    assert any("qsref" in m and "card_fraud_predictions" in m for m in missing), missing

    records = generate_prediction_records(3_000, seed=3).records
    data = tmp_path / "preds.ndjson"
    pl.DataFrame(records).write_ndjson(data)
    (tmp_path / "refs").mkdir()
    save_reference(build_reference(load_contract(path), None, [data]), tmp_path / "refs" / "predictions.qsref")
    assert [f.message for f in lint_file(path) if not f.note] == []

    bad = tmp_path / "bad.odcs.yaml"
    bad.write_text(path.read_text().replace("score: score,", "score: probability,"))
    found = [f for f in lint_file(bad) if not f.note]
    assert [f.message for f in found if "not a property" in f.message], [f.message for f in found]
    assert all(f.line is not None for f in found)
