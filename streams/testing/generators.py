"""Realistic feature and prediction records with injected faults, deterministic given ``seed``.

Generated records match ``contracts/card_transactions.odcs.yaml`` (features) and
``contracts/fraud_predictions.odcs.yaml`` (predictions). ``faults`` maps a
:class:`Fault` to the share of records that get it: exactly ``round(share * n)``
records per fault, each record at most one fault, positions drawn from ``seed``.
Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import enum
import hashlib
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

__all__ = [
    "CLEAN",
    "Fault",
    "GeneratedRecords",
    "generate_feature_frame",
    "generate_feature_records",
    "generate_prediction_records",
]

CLEAN = "ok"
#: Kafka timestamp of the first message built by :func:`make_messages` (2025-03-01T00:00:00Z).
BASE_TIMESTAMP_MS = 1_740_787_200_000
_BASE = datetime(2025, 3, 1, tzinfo=UTC)


class Fault(enum.StrEnum):
    """A kind of bad record, one per kind of check the example contracts run."""

    NULL_REQUIRED = "null_required"  # a required field is null
    OUT_OF_RANGE = "out_of_range"  # a number or timestamp outside its bounds
    BAD_PATTERN = "bad_pattern"  # a string breaking its pattern or length
    INVALID_ENUM = "invalid_enum"  # a value outside the allowed set
    DUPLICATE_ID = "duplicate_id"  # the unique id of another (clean) record
    WRONG_TYPE = "wrong_type"  # a value of the wrong JSON type ("12" for an integer)
    CROSS_FIELD = "cross_field"  # fields inconsistent with each other (expression rule)
    MISSING_FIELD = "missing_field"  # a required field absent from the record
    UNKNOWN_FIELD = "unknown_field"  # an undeclared extra field: drift, not a violation

    @property
    def gating(self) -> bool:
        """Records with this fault are invalid (quarantined in gate mode)."""
        return self is not Fault.UNKNOWN_FIELD


@dataclass(frozen=True)
class GeneratedRecords:
    """Records plus, per record, the fault injected (a :class:`Fault` value, or ``"ok"``)."""

    records: list[dict[str, Any]]
    labels: list[str]
    #: duplicate record index -> index of the clean record whose id it repeats
    duplicate_of: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def count(self, label: str) -> int:
        return sum(1 for x in self.labels if x == label)

    @property
    def expected_invalid(self) -> frozenset[int]:
        """Indexes of the records the contract must reject: gating faults and the originals of duplicated ids."""
        bad = {i for i, x in enumerate(self.labels) if x != CLEAN and Fault(x).gating}
        return frozenset(bad | set(self.duplicate_of.values()))


# --- shared helpers -------------------------------------------------------------------------------


def _iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _fault_plan(n: int, faults: Mapping[str, float] | None, rng: random.Random) -> list[str]:
    labels = [CLEAN] * n
    if not faults:
        return labels
    wanted = {Fault(k): round(float(share) * n) for k, share in faults.items()}
    total = sum(wanted.values())
    if total > n:
        raise ValueError(f"faults ask for {total} faulty records out of {n}")
    positions = rng.sample(range(n), total)
    start = 0
    for kind in Fault:  # a fixed order, so the plan depends on the seed only
        k = wanted.get(kind, 0)
        for i in positions[start : start + k]:
            labels[i] = kind.value
        start += k
    return labels


Mutator = Callable[[dict[str, Any], random.Random], None]


def _inject(
    records: list[dict[str, Any]],
    labels: list[str],
    rng: random.Random,
    mutators: Mapping[Fault, list[Mutator]],
    id_field: str,
) -> dict[int, int]:
    clean = [i for i, x in enumerate(labels) if x == CLEAN]
    rng.shuffle(clean)
    duplicate_of: dict[int, int] = {}
    for i, label in enumerate(labels):
        if label == CLEAN:
            continue
        kind = Fault(label)
        if kind is Fault.DUPLICATE_ID:
            if not clean:
                labels[i] = CLEAN
                continue
            src = clean.pop()
            records[i][id_field] = records[src][id_field]
            duplicate_of[i] = src
            continue
        rng.choice(mutators[kind])(records[i], rng)
    return duplicate_of


def _setter(name: str, value: Any) -> Mutator:
    def mutate(record: dict[str, Any], _rng: random.Random) -> None:
        record[name] = value

    return mutate


def _dropper(name: str) -> Mutator:
    def mutate(record: dict[str, Any], _rng: random.Random) -> None:
        record.pop(name, None)

    return mutate


def _stringify(name: str) -> Mutator:
    def mutate(record: dict[str, Any], _rng: random.Random) -> None:
        record[name] = str(record[name]).lower()

    return mutate


# --- card transaction features ----------------------------------------------------------------------

_COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "GB", "US", "CH", "SE", "PL", "BE", "AT", "IE", "DK", "NO", "CA", "JP")
_CURRENCY = {"GB": "GBP", "US": "USD", "CH": "CHF", "SE": "SEK", "NO": "NOK", "DK": "DKK", "PL": "PLN"}
_CURRENCY |= {"JP": "JPY", "CA": "CAD", "BR": "BRL"}
_PER_EUR = {"EUR": 1.0, "GBP": 0.85, "USD": 1.08, "CHF": 0.95, "SEK": 11.4, "NOK": 11.6, "DKK": 7.46}
_PER_EUR |= {"PLN": 4.3, "JPY": 162.0, "CAD": 1.47, "BRL": 5.4}
_MCC = ("5411", "5812", "5814", "5999", "4111", "5541", "7011", "5732", "5311", "6011", "4829", "5912", "5691")
_CHANNELS = ("pos", "ecom", "atm", "moto")
_CHANNEL_WEIGHTS = (0.55, 0.35, 0.05, 0.05)
_NAMES = ("ana", "sam", "lea", "omar", "yuki", "ines", "piet", "kofi", "mia", "raj", "eva", "li")
_DOMAINS = ("example.com", "mail.example.org", "example.net")

_FEATURE_DTYPES: dict[str, Any] = {
    "event_id": pl.String, "event_ts": pl.Datetime("ms", "UTC"), "card_hash": pl.String,
    "customer_email": pl.String, "customer_id": pl.String, "merchant_id": pl.String,
    "merchant_category_code": pl.String, "merchant_country": pl.String, "amount": pl.Float64,
    "currency": pl.String, "amount_eur": pl.Float64, "channel": pl.String, "card_present": pl.Boolean,
    "device_id": pl.String, "device_trust_score": pl.Float32, "is_new_device": pl.Boolean,
    "ip_country": pl.String, "txn_count_1h": pl.Int32, "txn_count_24h": pl.Int32,
    "amount_sum_24h_eur": pl.Float64, "distinct_merchants_24h": pl.Int32, "seconds_since_last_txn": pl.Int64,
    "account_age_days": pl.Int32, "hour_of_day": pl.Int8,
}  # fmt: skip
#: The polars schema the features contract declares (what :func:`generate_feature_frame` returns).
FEATURE_SCHEMA = pl.Schema(_FEATURE_DTYPES)


def _feature(rng: random.Random, moment: datetime) -> dict[str, Any]:
    country = rng.choice(_COUNTRIES)
    currency = _CURRENCY.get(country, "EUR")
    rate = _PER_EUR[currency]
    amount_eur = round(min(rng.lognormvariate(3.4, 1.1), 40_000 / rate, 9_000.0) + 0.01, 2)
    channel = rng.choices(_CHANNELS, _CHANNEL_WEIGHTS)[0]
    has_device = rng.random() < 0.9
    n24 = 1 + int(rng.expovariate(0.25))
    email = None
    if rng.random() < 0.9:
        email = f"{rng.choice(_NAMES)}.{rng.choice(_NAMES)}{rng.randrange(100)}@{rng.choice(_DOMAINS)}"
    return {
        "event_id": _uuid(rng),
        "event_ts": _iso_ms(moment),
        "card_hash": hashlib.sha256(rng.getrandbits(64).to_bytes(8, "big")).hexdigest(),
        "customer_email": email,
        "customer_id": f"cus_{rng.randrange(10**10):010d}",
        "merchant_id": f"mer_{rng.getrandbits(32):08x}",
        "merchant_category_code": rng.choice(_MCC),
        "merchant_country": country,
        "amount": round(amount_eur * rate, 2),
        "currency": currency,
        "amount_eur": amount_eur,
        "channel": channel,
        "card_present": channel in ("pos", "atm"),
        "device_id": f"dev_{rng.getrandbits(48):012x}" if has_device else None,
        "device_trust_score": round(rng.betavariate(5, 2), 4) if has_device and rng.random() < 0.98 else None,
        "is_new_device": rng.random() < 0.1 if has_device else None,
        "ip_country": (country if rng.random() < 0.9 else rng.choice(_COUNTRIES)) if channel == "ecom" else None,
        "txn_count_1h": rng.randint(1, min(n24, 6)),
        "txn_count_24h": n24,
        "amount_sum_24h_eur": round(amount_eur + sum(rng.lognormvariate(3.4, 1.0) for _ in range(n24 - 1)), 2),
        "distinct_merchants_24h": rng.randint(1, n24),
        "seconds_since_last_txn": rng.randint(5, 86_400) if n24 > 1 else None,
        "account_age_days": rng.randint(0, 8_000),
        "hour_of_day": moment.hour,
    }


def _velocity_break(record: dict[str, Any], _rng: random.Random) -> None:
    record["txn_count_1h"] = record["txn_count_24h"] + 3


def _sum_break(record: dict[str, Any], _rng: random.Random) -> None:
    record["amount_sum_24h_eur"] = round(record["amount_eur"] / 2, 2)


_FEATURE_FAULTS: dict[Fault, list[Mutator]] = {
    Fault.NULL_REQUIRED: [_setter(n, None) for n in ("merchant_id", "amount", "currency", "card_present", "card_hash")],
    Fault.OUT_OF_RANGE: [
        _setter("amount", -12.5), _setter("amount", 75_000.0), _setter("hour_of_day", 27),
        _setter("device_trust_score", 1.37), _setter("account_age_days", 40_000),
        _setter("event_ts", "2019-06-30T23:59:59.000Z"),
    ],
    Fault.BAD_PATTERN: [
        _setter("event_id", "EVT-000042"), _setter("merchant_category_code", "54x1"),
        _setter("card_hash", "4111-XXXX-XXXX-1111"), _setter("ip_country", "DEU"),
    ],
    Fault.INVALID_ENUM: [_setter("channel", "web"), _setter("currency", "XBT"), _setter("merchant_country", "XX")],
    Fault.WRONG_TYPE: [
        _stringify("txn_count_24h"), _stringify("amount"), _stringify("card_present"),
        _setter("merchant_id", 12345), _setter("event_ts", 1_740_787_200_000), _setter("hour_of_day", 13.5),
    ],
    Fault.CROSS_FIELD: [_velocity_break, _sum_break],
    Fault.MISSING_FIELD: [_dropper(n) for n in ("merchant_country", "channel", "customer_id", "account_age_days")],
    Fault.UNKNOWN_FIELD: [_setter("promo_code", "SPRING25"), _setter("risk_score_v2", 0.42)],
}  # fmt: skip


def _generate(
    n: int,
    seed: int,
    faults: Mapping[str, float] | None,
    make: Callable[[random.Random, datetime], dict[str, Any]],
    plan: Mapping[Fault, list[Mutator]],
    id_field: str,
) -> GeneratedRecords:
    """``n`` records a few hundred milliseconds apart from a random moment of the base day, then the faults."""
    rng = random.Random(seed)
    moment = _BASE + timedelta(seconds=rng.randrange(86_400))
    records = []
    for _ in range(n):
        moment += timedelta(milliseconds=rng.randint(1, 400))
        records.append(make(rng, moment))
    labels = _fault_plan(n, faults, rng)
    duplicate_of = _inject(records, labels, rng, plan, id_field)
    return GeneratedRecords(records, labels, duplicate_of)


def generate_feature_records(n: int, *, seed: int = 0, faults: Mapping[str, float] | None = None) -> GeneratedRecords:
    """``n`` card-transaction feature records (``card_transactions``), some with injected faults."""
    return _generate(n, seed, faults, _feature, _FEATURE_FAULTS, "event_id")


def generate_feature_frame(n: int, seed: int = 0) -> pl.DataFrame:
    """``n`` clean feature rows as a polars DataFrame typed exactly as the contract declares."""
    records = generate_feature_records(n, seed=seed).records
    frame = pl.DataFrame(records, schema={**FEATURE_SCHEMA, "event_ts": pl.String}, orient="row")
    ts = pl.col("event_ts").str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="ms", time_zone="UTC")
    return frame.with_columns(ts)


# --- fraud predictions -----------------------------------------------------------------------------------


def _prediction(rng: random.Random, moment: datetime) -> dict[str, Any]:
    score = round(rng.betavariate(1.2, 12.0), 6)
    threshold = 0.5
    return {
        "prediction_id": _uuid(rng),
        "event_id": _uuid(rng),
        "model_name": "card-fraud-gbm",
        "model_version": "3.2.1",
        "score": score,
        "predicted_label": "fraud" if score >= threshold else "legit",
        "decision_threshold": threshold,
        "latency_ms": round(min(rng.lognormvariate(3.0, 0.45), 240.0), 3),
        "predicted_at": _iso_ms(moment),
    }


def _flip_label(record: dict[str, Any], _rng: random.Random) -> None:
    record["predicted_label"] = "legit" if record["predicted_label"] == "fraud" else "fraud"


def _score_above_one(record: dict[str, Any], _rng: random.Random) -> None:
    record["score"], record["predicted_label"] = 1.25, "fraud"


_PREDICTION_FAULTS: dict[Fault, list[Mutator]] = {
    Fault.NULL_REQUIRED: [_setter(n, None) for n in ("model_name", "predicted_at", "event_id")],
    Fault.OUT_OF_RANGE: [_setter("latency_ms", -3.0), _score_above_one],
    Fault.BAD_PATTERN: [_setter("model_version", "v3.2"), _setter("prediction_id", "pred-000042")],
    Fault.INVALID_ENUM: [_setter("model_name", "card-fraud-xgb")],
    Fault.WRONG_TYPE: [_stringify("score"), _stringify("latency_ms"), _setter("predicted_at", 1_740_787_200_000)],
    Fault.CROSS_FIELD: [_flip_label],
    Fault.MISSING_FIELD: [_dropper(n) for n in ("model_version", "latency_ms", "predicted_at")],
    Fault.UNKNOWN_FIELD: [_setter("explanation", {"top_feature": "amount_eur"}), _setter("shadow_score", 0.1)],
}


def generate_prediction_records(
    n: int, *, seed: int = 0, faults: Mapping[str, float] | None = None
) -> GeneratedRecords:
    """``n`` model prediction records (``card_fraud_predictions``), some with injected faults."""
    return _generate(n, seed, faults, _prediction, _PREDICTION_FAULTS, "prediction_id")


# --- messages and batches --------------------------------------------------------------------------------
