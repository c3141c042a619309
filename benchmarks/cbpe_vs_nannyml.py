"""CBPE expected accuracy: ours (streams.profiles.prediction) next to NannyML's CBPE on the same data.

    PYTHONPATH=. .venv/bin/python benchmarks/cbpe_vs_nannyml.py [--nannyml-python /path/to/python]

Calibrated binary scores (the label drawn with probability = score) from four Beta distributions,
5,000 predictions each, against a 20,000-prediction reference. NannyML is not a dependency (it pins
its own pandas / scikit-learn stack): give the interpreter of a separate virtualenv where
``pip install nannyml statsmodels`` worked, and its CBPE runs there on the same Parquet files.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from streams.profiles.performance import performance_partials
from streams.profiles.prediction import profile_models
from streams.profiles.spec import PredictionSpec

SPEC = PredictionSpec(score="score", label="predicted_label", model_version="model_version", positive_label="fraud")
BETAS = ((2.0, 3.0), (1.2, 12.0), (5.0, 5.0), (3.0, 1.5))

NANNYML = """
import sys, warnings
warnings.filterwarnings("ignore")
import pandas as pd, nannyml as nml
folder = sys.argv[1]
est = nml.CBPE(y_pred_proba="score", y_pred="pred", y_true="y", problem_type="classification_binary",
               metrics=["accuracy"], chunk_size=5000)
est.fit(pd.read_parquet(f"{folder}/reference.parquet"))
for i in range(int(sys.argv[2])):
    res = est.estimate(pd.read_parquet(f"{folder}/analysis{i}.parquet")).filter(period="analysis").to_df()
    print(float(res[("accuracy", "value")].iloc[0]))
"""


def frame(n: int, a: float, b: float, rng: np.random.Generator) -> pl.DataFrame:
    score = rng.beta(a, b, n)
    y = rng.random(n) < score
    return pl.DataFrame(
        {
            "score": score,
            "predicted_label": np.where(score >= 0.5, "fraud", "legit"),
            "model_version": ["1"] * n,
            "actual": y,
            "pred": (score >= 0.5).astype(int),
            "y": y.astype(int),
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nannyml-python", default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        frame(20_000, 2.0, 3.0, rng).write_parquet(Path(tmp) / "reference.parquet")
        rows = []
        for i, (a, b) in enumerate(BETAS):
            df = frame(5_000, a, b, rng)
            df.write_parquet(Path(tmp) / f"analysis{i}.parquet")
            expected = profile_models(df, SPEC)["1"].expected_accuracy
            realized = performance_partials(df, SPEC, "actual")["1"].accuracy
            rows.append((a, b, expected, realized))
        theirs: list[str] = ["-"] * len(rows)
        if args.nannyml_python:
            out = subprocess.run(
                [args.nannyml_python, "-c", NANNYML, tmp, str(len(rows))], capture_output=True, text=True, check=True
            )
            theirs = [f"{float(x):.6f}" for x in out.stdout.split()]
    print(f"{'scores':>14} {'ours (CBPE)':>12} {'NannyML CBPE':>13} {'realized':>9}")
    for (a, b, expected, realized), nml in zip(rows, theirs, strict=True):
        print(f"{f'Beta({a:g},{b:g})':>14} {expected:>12.6f} {nml:>13} {realized:>9.4f}")


if __name__ == "__main__":
    main()
