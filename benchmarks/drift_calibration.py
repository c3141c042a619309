"""Drift defaults: the no-shift false-positive rate and the power on known shifts, per field kind and n.

    PYTHONPATH=. .venv/bin/python benchmarks/drift_calibration.py [--samples 200] [--sizes 200,500,1500,5000]
                                                                  [--markdown]

Against a 20,000-row reference, ``--samples`` windows of each size n are drawn and judged with the
default :class:`~streams.profiles.drift.DriftConfig` (KS / χ² at p < 0.05 up to 1,000 values, normalised
Wasserstein / Jensen–Shannon at 0.1 above):

1. **no shift** (the window drawn from the reference's distribution): the share of windows in which the
   field is flagged, per field kind —

   * ``normal``: N(100, 15); ``lognormal``: amounts, lognormal(3.4, 1.1) with 2% nulls; ``integer``: a
     count, 1 + geometric(0.25);
   * ``channel``: 4 categories 55/35/5/5; ``ip_country``: a sparse categorical, 150 codes with Zipf(1.2)
     shares (the top one 27%, 108 of them under 0.3% each) and 60% nulls, as an IP-derived country is;
     ``codes``: 250 equally likely codes (many categories each expected a few times: pooling keeps them);
   * the same categorical fields judged the way they were before pooling (``old``: one-sample χ²
     against add-half smoothed reference shares, Jensen–Shannon on every category): the false alarms this
     calibration removes;
   * ``demo``: every profiled field of the demo's own generator (``streams.testing``), windows made as the
     demo's producer makes them (ticks of 20 records, each from a fresh seed), against a reference built
     with :func:`~streams.profiles.reference.build_reference` from 20,000 generated records, with the demo
     contract's ``qstreams.drift`` overrides; the share of windows with *any* field flagged, and the fields
     that were;

2. **power**: the share of windows in which the shifted field is flagged — mean shift (+0.3 sd), variance
   change (sd × 1.5), mix change (channel 55/35 → 35/55), sparse mix changes (ip_country: the top
   country's share 27% → 35%, a Jensen–Shannon distance of 0.064, below the 0.1 threshold; 27% → 45%,
   0.136), one of the 250 codes taking 20% of the values, a new category (5% ``web``), a null spike (2% → 20%).

The tested fields of a window are one family (``DriftConfig.family_correction``, Holm's step-down); the
``each field alone`` rows judge every field at the bare threshold, as before it.

Deterministic given the seeds. Takes a few minutes on one core (the demo part most of it).
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from streams.contracts.loader import load_contract
from streams.profiles import metrics as m
from streams.profiles.drift import DriftConfig, Verdict, compare, drift_against
from streams.profiles.profile import Profile, profile_frame
from streams.profiles.properties import drift_overrides
from streams.profiles.reference import build_reference
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec, refine_tails

CONTRACT = Path(__file__).resolve().parent.parent / "contracts" / "card_transactions.odcs.yaml"
NUMERIC = ("normal", "lognormal", "integer")
CATEGORICAL = ("channel", "ip_country", "codes")
CHANNELS = np.array(["pos", "ecom", "atm", "moto"])
COUNTRIES = np.array([f"C{i:03d}" for i in range(150)])
CODES = np.array([f"K{i:03d}" for i in range(250)])


def zipf_shares(k: int = 150, s: float = 1.2) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** s
    return np.asarray(w / w.sum())


def sample(n: int, rng: np.random.Generator, **shift: Any) -> pl.DataFrame:
    """``n`` rows of the five synthetic fields; ``shift`` changes one of them."""
    normal = rng.normal(100.0 + shift.get("mean", 0.0), 15.0 * shift.get("sd", 1.0), n)
    amount = rng.lognormal(3.4, 1.1, n)
    amount[rng.random(n) < shift.get("null_rate", 0.02)] = np.nan
    integer = 1 + rng.geometric(0.25, n)
    channels, mix = CHANNELS, np.array(shift.get("mix", (0.55, 0.35, 0.05, 0.05)))
    if shift.get("new"):
        channels, mix = np.append(CHANNELS, "web"), np.append(mix * 0.95, 0.05)
    shares = zipf_shares()
    if "top_share" in shift:
        rest = shares[1:] * (1 - shift["top_share"]) / shares[1:].sum()
        shares = np.concatenate([[shift["top_share"]], rest])
    country = pl.Series(rng.choice(COUNTRIES, n, p=shares).tolist(), dtype=pl.String)
    country = pl.select(pl.when(pl.Series(rng.random(n) < 0.6)).then(None).otherwise(country)).to_series()
    codes = rng.choice(CODES, n)
    if "hot" in shift:  # one code takes this share of the values
        codes[rng.random(n) < shift["hot"]] = CODES[0]
    return pl.DataFrame(
        {
            "normal": normal,
            "lognormal": amount,
            "integer": integer.astype(np.int64),
            "channel": rng.choice(channels, n, p=mix / mix.sum()),
            "ip_country": country,
            "codes": codes.tolist(),
        }
    )


def spec_from(reference: pl.DataFrame, bins: int = 100) -> ProfileSpec:
    """Bins on the reference's quantiles with refined tails, as ``build_reference`` lays them."""
    fields = []
    for name in NUMERIC:
        values = reference[name].cast(pl.Float64).fill_nan(None).drop_nulls().to_numpy()
        edges = tuple(sorted({float(q) for q in np.quantile(values, np.linspace(0, 1, bins + 1))}))
        fields.append(FieldSpec(name, Kind.NUMERIC, refine_tails(edges)))
    fields += [FieldSpec(name, Kind.CATEGORICAL) for name in CATEGORICAL]
    return ProfileSpec("urn:bench:drift@1.0.0", "bench", tuple(fields))


def old_categorical(ref: Profile, cur: Profile, name: str, n_large: int = 1000) -> bool:
    """The verdict before this calibration: one-sample χ² on add-half smoothed reference shares (n <= 1000),
    Jensen–Shannon on every category (n > 1000), new categories in one bin; plus the new-category check."""
    r, c = ref.fields[name], cur.fields[name]
    rc, cc = r.frequencies(), c.frequencies()  # type: ignore[union-attr]
    cats = sorted(rc)
    new_n = sum(v for k, v in cc.items() if k not in rc)
    ref_vec, cur_vec = [rc[k] for k in cats] + [0], [cc.get(k, 0) for k in cats] + [new_n]
    if new_n / c.count > 0.01:
        return True
    if c.count <= n_large:
        smoothed = [(v + 0.5) / (r.count + 0.5 * len(ref_vec)) for v in ref_vec]
        return m.chi_square(cur_vec, smoothed)[1] < 0.05
    return m.js_distance(ref_vec, cur_vec) >= 0.1


ALONE = DriftConfig(family_correction=False)  # no Holm step-down over a window's tested fields


def synthetic(samples: int, sizes: list[int]) -> tuple[dict[tuple[str, int], float], dict[tuple[str, int], float]]:
    reference = sample(20_000, np.random.default_rng(1))
    spec = spec_from(reference)
    ref = profile_frame(reference, spec)
    edges = {f.name: f.edges for f in spec.fields if f.edges}
    shifts: dict[str, tuple[dict[str, Any], str]] = {
        "mean shift +0.3 sd": ({"mean": 4.5}, "normal"),
        "variance sd x 1.5": ({"sd": 1.5}, "normal"),
        "mix 55/35 -> 35/55": ({"mix": (0.35, 0.55, 0.05, 0.05)}, "channel"),
        "sparse mix: top 27% -> 35% (true JS 0.064)": ({"top_share": 0.35}, "ip_country"),
        "sparse mix: top 27% -> 45% (true JS 0.136)": ({"top_share": 0.45}, "ip_country"),
        "many codes: one code 0.4% -> 20%": ({"hot": 0.2}, "codes"),
        "new category 5%": ({"new": True}, "channel"),
        "null spike 2% -> 20%": ({"null_rate": 0.2}, "lognormal"),
    }
    fpr: dict[tuple[str, int], float] = {}
    power: dict[tuple[str, int], float] = {}
    for n in sizes:
        rng = np.random.default_rng(1000 + n)
        flagged: Counter[str] = Counter()
        for _ in range(samples):
            cur = profile_frame(sample(n, rng), spec)
            report = compare(ref, cur, edges=edges)
            flagged.update(f.field for f in report.fields if f.verdict is Verdict.DRIFT)
            flagged["any synthetic field, each field alone"] += bool(
                compare(ref, cur, edges=edges, config=ALONE).drifted
            )
            flagged.update(f"{name} (old)" for name in CATEGORICAL if old_categorical(ref, cur, name))
            flagged["any synthetic field"] += bool(report.drifted)
        for name in (
            *NUMERIC,
            *CATEGORICAL,
            *(f"{c} (old)" for c in CATEGORICAL),
            "any synthetic field",
            "any synthetic field, each field alone",
        ):
            fpr[(name, n)] = flagged[name] / samples
        for label, (shift, target) in shifts.items():
            hits = 0
            for _ in range(samples):
                report = compare(ref, profile_frame(sample(n, rng, **shift), spec), edges=edges)
                hits += report.field(target).verdict is Verdict.DRIFT
            power[(f"{label} ({target})", n)] = hits / samples
    return fpr, power


def demo(samples: int, sizes: list[int]) -> dict[tuple[str, int], float]:
    """Clean windows of the demo's generator, as its producer sends them, against the demo's reference."""
    from streams.testing import generate_feature_records
    from streams.testing.generators import FEATURE_SCHEMA

    contract = load_contract(CONTRACT)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "reference.ndjson"
        pl.DataFrame(generate_feature_records(20_000, seed=101).records).write_ndjson(data)
        reference = build_reference(contract, None, [data])
    schema = {**FEATURE_SCHEMA, "event_ts": pl.String}
    alone = DriftConfig(family_correction=False)
    variants: dict[str, tuple[Mapping[str, Mapping[str, Any]], DriftConfig]] = {
        "demo, contract overrides": (drift_overrides(contract, "card_transactions"), DriftConfig()),
        "demo, contract overrides, each field alone": (drift_overrides(contract, "card_transactions"), alone),
        "demo, no overrides": ({}, DriftConfig()),
    }
    out: dict[tuple[str, int], float] = {}
    for n in sizes:
        rng = random.Random(n)
        flagged: Counter[str] = Counter()
        for _ in range(samples):
            records: list[dict[str, Any]] = []
            while len(records) < n:
                records += generate_feature_records(20, seed=rng.randrange(2**31)).records
            current = profile_frame(pl.DataFrame(records[:n], schema=schema, orient="row"), reference.spec)
            for label, (overrides, config) in variants.items():
                report = drift_against(reference, current, overrides=overrides, config=config)
                flagged[label] += bool(report.drifted)
                flagged.update(f"{label}: {f}" for f in report.drifted)
        for key, k in flagged.items():
            out[(key, n)] = k / samples
        for label in variants:
            out.setdefault((label, n), 0.0)
    names = sorted({name for name, _ in out}, key=lambda s: (":" in s, s))  # the totals first, then per field
    return {(name, n): out.get((name, n), 0.0) for name in names for n in sizes}


def table(title: str, rows: dict[tuple[str, int], float], sizes: list[int], markdown: bool) -> str:
    names = list(dict.fromkeys(name for name, _ in rows))
    head = [title, *(f"n = {n:,}" for n in sizes)]
    lines = [head, *([name, *(f"{100 * rows.get((name, n), 0.0):.1f}%" for n in sizes)] for name in names)]
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|---" + "|---:" * len(sizes) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in lines[1:]]
        return "\n".join(out)
    width = max(len(r[0]) for r in lines)
    return "\n".join(f"{r[0]:<{width}}  " + "  ".join(f"{c:>10}" for c in r[1:]) for r in lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--sizes", default="200,500,1500,5000")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    config = DriftConfig()
    print(f"defaults: {config}\n")
    fpr, power = synthetic(args.samples, sizes)
    print(table("no shift: windows flagged", fpr, sizes, args.markdown) + "\n")
    print(table("known shift: windows flagged on the shifted field", power, sizes, args.markdown) + "\n")
    if not args.skip_demo:
        print(table("demo generator, no shift: windows flagged", demo(args.samples, sizes), sizes, args.markdown))


run: Callable[[list[str] | None], None] = main

if __name__ == "__main__":
    main()
