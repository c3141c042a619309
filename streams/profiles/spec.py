"""What a profile measures: the fields, their kind, and the fixed bins every partial shares.

Profiles merge only when they were computed with the same :class:`ProfileSpec`
(same contract version, schema object, bin edges, caps and hash scheme): its
:attr:`ProfileSpec.binning_id` travels with every profile and merge checks it.

Numeric bins are right-closed, laid on the reference's edges ``e0 < e1 < ... < em``
(``e0`` its minimum, ``em`` its maximum): ``(-inf, e0], (e0, e1], ..., (e(m-1), em], (em, +inf)``,
so a histogram has ``m + 2`` counts and the empirical CDF is exact at every edge.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

from streams.contracts.stream import DurationError, parse_duration

if TYPE_CHECKING:
    from streams.contracts.model import Contract, SchemaObject

__all__ = [
    "DEFAULT_CATEGORY_CAP",
    "DEFAULT_KMV_K",
    "DEFAULT_SCORE_BINS",
    "FieldSpec",
    "Kind",
    "LabelsSpec",
    "PredictionSpec",
    "ProfileSpec",
    "hash_scheme",
    "refine_tails",
    "spec_for_schema",
]

#: Exact category counts are kept for at most this many distinct values per field (then top-k + other).
DEFAULT_CATEGORY_CAP = 256
#: k of the k-minimum-values distinct-count sketch: exact below k distinct values, ~1/sqrt(k-2) relative error above.
DEFAULT_KMV_K = 256
#: Score histograms of prediction profiles: equal-width bins over [0, 1].
DEFAULT_SCORE_BINS = 100


class Kind(enum.StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


def hash_scheme() -> str:
    """The hash behind distinct-count sketches: polars' ``hash(seed=0)``, stable within a polars release."""
    return f"polars-{pl.__version__}-seed0"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One profiled field: numeric (moments + histogram on ``edges``) or categorical (counts up to ``cap``)."""

    name: str
    kind: Kind
    edges: tuple[float, ...] = ()
    cap: int = DEFAULT_CATEGORY_CAP

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind.value}
        if self.kind is Kind.NUMERIC:
            out["edges"] = list(self.edges)
        else:
            out["cap"] = self.cap
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldSpec:
        return cls(
            name=str(data["name"]),
            kind=Kind(data["kind"]),
            edges=tuple(float(x) for x in data.get("edges", ())),
            cap=int(data.get("cap", DEFAULT_CATEGORY_CAP)),
        )


@dataclass(frozen=True, slots=True)
class LabelsSpec:
    """The labels topic of a prediction contract (``qstreams.prediction.labels``): realized outcomes.

    Each record of ``topic`` is a JSON object carrying the prediction id (``prediction_id``), the
    actual label (``label``: a boolean, or a value compared with ``positiveLabel``) and optionally
    its time (``label_time``: ISO-8601 text, read as a ``timestamp`` property; default the Kafka timestamp). A label
    joins the prediction with the same id when their times are at most ``horizon_ms`` apart.
    """

    topic: str
    prediction_id: str
    label: str
    horizon_ms: int
    label_time: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "predictionId": self.prediction_id, "label": self.label,
                "labelTime": self.label_time, "horizonMs": self.horizon_ms}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> LabelsSpec:
        """Parse ``qstreams.prediction.labels``; raises ``ValueError`` naming the offending key."""
        where = "qstreams.prediction.labels"
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} must be a mapping such as {{topic: ..., predictionId: ..., label: ..., "
                             "horizon: 1h}")  # fmt: skip
        known = {"topic", "predictionId", "label", "labelTime", "horizon"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{where} has unknown keys {unknown}; known keys: {sorted(known)}")
        for key in ("topic", "predictionId", "label", "horizon"):
            if data.get(key) is None:
                raise ValueError(f"{where} needs `{key}` (known keys: {sorted(known)})")
        for key in ("topic", "predictionId", "label", "labelTime"):
            value = data.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{where}.{key} must be a non-empty string, not {value!r}")
        try:
            horizon = parse_duration(data["horizon"])
        except DurationError as exc:
            raise ValueError(f"{where}.horizon: {exc}") from None
        if horizon <= 0:
            raise ValueError(f"{where}.horizon must be longer than 0, got {data['horizon']!r}")
        return cls(data["topic"], data["predictionId"], data["label"], horizon, data.get("labelTime"))


@dataclass(frozen=True, slots=True)
class PredictionSpec:
    """The fields of a prediction contract (``qstreams.prediction``) and how to read them.

    ``positive_label`` is the predicted label meaning the positive class; without it a score at or
    above ``decision_threshold`` is a positive prediction. ``confidence_threshold`` bounds the
    confidence ``max(score, 1 - score)`` below which a prediction counts as low-confidence.
    """

    score: str
    label: str | None = None
    model_version: str | None = None
    positive_label: str | None = None
    decision_threshold: float = 0.5
    confidence_threshold: float = 0.6
    score_bins: int = DEFAULT_SCORE_BINS
    prediction_id: str | None = None
    #: the labels binding: not part of :meth:`as_dict` (profiles and their bins do not depend on it)
    labels: LabelsSpec | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "label": self.label,
            "modelVersion": self.model_version,
            "positiveLabel": self.positive_label,
            "decisionThreshold": self.decision_threshold,
            "confidenceThreshold": self.confidence_threshold,
            "scoreBins": self.score_bins,
            "predictionId": self.prediction_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictionSpec:
        """Parse the ``qstreams.prediction`` mapping; raises ``ValueError`` with the offending key."""
        if not isinstance(data, Mapping) or not isinstance(data.get("score"), str):
            raise ValueError("qstreams.prediction must be a mapping naming at least the score field: {score: ...}")
        known = {"score", "label", "modelVersion", "positiveLabel", "decisionThreshold", "confidenceThreshold"}
        known |= {"scoreBins", "predictionId", "labels"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"qstreams.prediction has unknown keys {unknown}; known keys: {sorted(known)}")

        def text(key: str) -> str | None:
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"qstreams.prediction.{key} must be a field name (a string), not {value!r}")
            return value

        def unit(key: str, default: float) -> float:
            value = data.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ValueError(f"qstreams.prediction.{key} must be a number strictly between 0 and 1, not {value!r}")
            return float(value)

        bins = data.get("scoreBins", DEFAULT_SCORE_BINS)
        if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= 10_000:
            raise ValueError(f"qstreams.prediction.scoreBins must be an integer in [2, 10000], not {bins!r}")
        positive = data.get("positiveLabel")
        labels = None if data.get("labels") is None else LabelsSpec.from_dict(data["labels"])
        if labels is not None and not isinstance(data.get("predictionId"), str):
            raise ValueError("qstreams.prediction.labels joins labels by prediction id: name the predictions' id "
                             "field in qstreams.prediction.predictionId")  # fmt: skip
        return cls(
            score=data["score"],
            label=text("label"),
            model_version=text("modelVersion"),
            positive_label=None if positive is None else str(positive),
            decision_threshold=unit("decisionThreshold", 0.5),
            confidence_threshold=unit("confidenceThreshold", 0.6),
            score_bins=bins,
            prediction_id=text("predictionId"),
            labels=labels,
        )


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    """Everything two workers must agree on for their profiles to merge."""

    contract: str  # id@version
    schema: str
    fields: tuple[FieldSpec, ...]
    kmv_k: int = DEFAULT_KMV_K
    prediction: PredictionSpec | None = None
    hashing: str = field(default_factory=hash_scheme)

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "schema": self.schema,
            "fields": [f.as_dict() for f in self.fields],
            "kmv_k": self.kmv_k,
            "prediction": None if self.prediction is None else self.prediction.as_dict(),
            "hashing": self.hashing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProfileSpec:
        prediction = data.get("prediction")
        return cls(
            contract=str(data["contract"]),
            schema=str(data["schema"]),
            fields=tuple(FieldSpec.from_dict(f) for f in data["fields"]),
            kmv_k=int(data["kmv_k"]),
            prediction=None if prediction is None else PredictionSpec.from_dict(prediction),
            hashing=str(data["hashing"]),
        )

    @property
    def binning_id(self) -> str:
        """16 hex digits identifying this spec: profiles with different ids never merge."""
        blob = orjson.dumps(self.as_dict(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_edges(self, edges: Mapping[str, tuple[float, ...]]) -> ProfileSpec:
        """The same spec with the numeric bin edges replaced (reference building, pass 2)."""
        fields = tuple(replace(f, edges=tuple(edges[f.name])) if f.name in edges else f for f in self.fields)
        return replace(self, fields=fields)


_NUMERIC = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64, pl.Float32, pl.Float64)


def spec_for_schema(
    contract: Contract,
    schema: SchemaObject,
    *,
    prediction: PredictionSpec | None = None,
    category_cap: int = DEFAULT_CATEGORY_CAP,
    kmv_k: int = DEFAULT_KMV_K,
) -> ProfileSpec:
    """The default spec of a schema object, without bin edges (a reference fills them in).

    Numbers are numeric; strings and booleans categorical. Left out: unique and primary-key
    fields (every value is new by design), redacted fields (pii, restricted, confidential: a
    profile must not carry their values) and temporal or nested fields.
    """
    fields: list[FieldSpec] = []
    for f in schema.fields:
        if f.unique or f.primary_key or f.redacted:
            continue
        if isinstance(f.dtype, _NUMERIC):
            fields.append(FieldSpec(f.name, Kind.NUMERIC))
        elif isinstance(f.dtype, (pl.String, pl.Boolean, pl.Categorical, pl.Enum)):
            fields.append(FieldSpec(f.name, Kind.CATEGORICAL, cap=category_cap))
    return ProfileSpec(contract.ref, schema.name, tuple(fields), kmv_k=kmv_k, prediction=prediction)


def refine_tails(edges: tuple[float, ...], per_side: int = 8, bins_per_side: int = 1) -> tuple[float, ...]:
    """Split the ``bins_per_side`` outermost bins at each end into ``per_side`` sub-bins.

    Quantile bins are widest in the tails (the top 1% of a heavy-tailed field can span most of its
    range), where mass spread uniformly inside a bin is least true; finer edges there keep binned
    Wasserstein distances close to the exact ones. Geometric spacing when the bin is positive and
    spans more than a factor of 4, linear otherwise.
    """
    if len(edges) < 3 or per_side < 2:
        return edges

    def split(a: float, b: float) -> list[float]:
        if a > 0 and b / a > 4:
            ratio = (b / a) ** (1 / per_side)
            return [a * ratio**i for i in range(1, per_side)]
        if b < 0 and a / b > 4:
            ratio = (a / b) ** (1 / per_side)
            return [b * ratio**i for i in range(1, per_side)]
        return [a + (b - a) * i / per_side for i in range(1, per_side)]

    k = min(bins_per_side, (len(edges) - 1) // 2)
    extra: set[float] = set()
    for i in range(k):
        extra.update(split(edges[i], edges[i + 1]))
        extra.update(split(edges[-2 - i], edges[-1 - i]))
    return tuple(sorted(set(edges) | {e for e in extra if edges[0] < e < edges[-1]}))
