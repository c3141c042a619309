"""Known distributions for the drift tests: a reference sample and shifted current samples."""

from __future__ import annotations

import numpy as np
import polars as pl

from streams.profiles.drift import DriftConfig, DriftReport, compare
from streams.profiles.profile import Profile, profile_frame
from streams.profiles.spec import FieldSpec, Kind, ProfileSpec, refine_tails

CATEGORIES = ("pos", "ecom", "atm", "moto")
MIX = (0.55, 0.35, 0.05, 0.05)


def sample(
    n: int,
    rng: np.random.Generator,
    *,
    mean: float = 100.0,
    sd: float = 15.0,
    mix: tuple[float, ...] = MIX,
    categories: tuple[str, ...] = CATEGORIES,
    null_rate: float = 0.02,
) -> pl.DataFrame:
    x = rng.normal(mean, sd, n)
    amount = rng.lognormal(3.4, 1.1, n)
    amount[rng.random(n) < null_rate] = np.nan
    hours = rng.integers(0, 24, n)
    return pl.DataFrame(
        {
            "x": x,
            "amount": amount,
            "hour": hours.astype(np.int32),
            "channel": rng.choice(np.array(categories), n, p=np.array(mix) / sum(mix)),
        }
    )


def spec_from(reference: pl.DataFrame, bins: int = 100) -> ProfileSpec:
    """Bins on the reference's exact quantiles, tails refined (what build_reference does with KLL quantiles)."""
    fields = []
    for name in ("x", "amount", "hour"):
        values = reference[name].cast(pl.Float64).fill_nan(None).drop_nulls().to_numpy()
        edges = tuple(sorted({float(q) for q in np.quantile(values, np.linspace(0, 1, bins + 1))}))
        fields.append(FieldSpec(name, Kind.NUMERIC, refine_tails(edges)))
    fields.append(FieldSpec("channel", Kind.CATEGORICAL))
    return ProfileSpec("urn:test:drift@1.0.0", "t", tuple(fields))


def drift(spec: ProfileSpec, reference: Profile, current: pl.DataFrame, **config: int | float) -> DriftReport:
    edges = {f.name: f.edges for f in spec.fields if f.edges}
    return compare(reference, profile_frame(current, spec), edges=edges, config=DriftConfig(**config))  # type: ignore[arg-type]
