"""The consistency of a stored profile with its spec: what a reference file must satisfy to be judged against.

A reference file is zlib'd JSON: a byte flipped breaks the zlib checksum, but an *edited* file (its JSON changed and
recompressed, or written by another tool) decodes fine. Its ``spec`` is bound to its profile by the binning id, its
counts are not: a histogram one bin short raised ``ValueError`` deep in the KS statistic, a negative ``m2`` a
``TypeError`` (a complex standard deviation), a field missing from the profile was silently not judged, and edited
counts gave wrong verdicts. :func:`check_profile` refuses every such file at load with a
:class:`~streams.errors.ProfileError` (reason ``corrupt``) naming the field and what does not add up.
"""

from __future__ import annotations

import math

from streams.errors import ProfileError
from streams.profiles.fields import CategoricalProfile, NumericProfile
from streams.profiles.prediction import ModelProfile
from streams.profiles.profile import Profile
from streams.profiles.spec import Kind, ProfileSpec

__all__ = ["check_profile"]


def check_profile(profile: Profile, spec: ProfileSpec, *, path: str | None = None) -> None:
    """Raise :class:`ProfileError` (``corrupt``) unless ``profile`` is a possible profile of records on ``spec``."""
    problem = _problem(profile, spec)
    if problem is not None:
        raise ProfileError(
            f"The reference profile is corrupt: {problem}. It was edited or written by something else than "
            "`qstreams profile build`; rebuild it.",
            reason="corrupt",
            path=path,
        )


def _problem(profile: Profile, spec: ProfileSpec) -> str | None:
    if profile.rows < 0:
        return f"it counts {profile.rows} rows"
    names = {f.name for f in spec.fields}
    if set(profile.fields) != names:
        return f"its profile holds fields {sorted(profile.fields)} where its spec lists {sorted(names)}"
    for f in spec.fields:
        p = profile.fields[f.name]
        if f.kind is Kind.NUMERIC:
            if not isinstance(p, NumericProfile):
                return f"field {f.name!r} is numeric in the spec but not in the profile"
            why = _numeric(p, len(f.edges) + 1 if f.edges else 0)
        else:
            if not isinstance(p, CategoricalProfile):
                return f"field {f.name!r} is categorical in the spec but not in the profile"
            why = _categorical(p, f.cap)
        if why is None and p.count + p.nulls != profile.rows:
            why = f"{p.count} values and {p.nulls} nulls in {profile.rows} rows"
        if why is not None:
            return f"field {f.name!r} has {why}"
    bins = spec.prediction.score_bins if spec.prediction is not None else None
    for version, model in profile.models.items():
        why = _model(model, bins)
        if why is not None:
            return f"model version {version!r} has {why}"
    return None


def _numeric(p: NumericProfile, bins: int) -> str | None:
    if len(p.hist) != bins:
        return f"{len(p.hist)} histogram bins where its edges make {bins}"
    if min((p.count, p.nulls, p.below, *p.hist)) < 0:
        return "a negative count"
    if bins and sum(p.hist) != p.count:
        return f"histogram bins adding up to {sum(p.hist)}, not its {p.count} values"
    if bins and p.below > p.hist[0]:
        return f"{p.below} values below its first edge, more than its first bin holds ({p.hist[0]})"
    if (p.min is None) != (p.count == 0) or (p.max is None) != (p.count == 0):
        return f"{p.count} values and a minimum {p.min} and maximum {p.max}"
    if p.min is not None and p.max is not None and not p.min <= p.max:
        return f"a minimum {p.min} above its maximum {p.max}"
    moments = (p.mean, p.m2, p.below_gap, p.above_gap)
    if not all(math.isfinite(x) for x in moments) or min(p.m2, p.below_gap, p.above_gap) < 0:
        return f"mean {p.mean}, sum of squared deviations {p.m2} and tail gaps {p.below_gap}, {p.above_gap}"
    return None


def _categorical(p: CategoricalProfile, cap: int) -> str | None:
    if p.cap != cap:
        return f"a category cap of {p.cap} where its spec says {cap}"
    values = [v for v, _ in p.counts]
    if values != sorted(set(values)):
        return "category values repeated or out of order"
    if min((p.count, p.nulls, p.other, *(n for _, n in p.counts))) < 0:
        return "a negative count"
    if sum(n for _, n in p.counts) + p.other != p.count:
        return f"category counts and other adding up to {sum(n for _, n in p.counts) + p.other}, not {p.count}"
    return None


def _model(m: ModelProfile, bins: int | None) -> str | None:
    if bins is not None and len(m.hist) != bins:
        return f"{len(m.hist)} score bins where its spec says {bins}"
    counts = (m.count, m.invalid, m.low_confidence, m.positives, *m.hist, *(n for _, n in m.labels))
    if min(counts, default=0) < 0:
        return "a negative count"
    if sum(m.hist) != m.count or m.low_confidence > m.count or m.positives > m.count:
        return f"score bins adding up to {sum(m.hist)}, {m.low_confidence} low-confidence and {m.positives} " \
               f"positive predictions for {m.count} valid scores"  # fmt: skip
    return None
