"""A prediction contract with a labels binding, synthetic predictions and labels as Kafka messages, and the
independent computation of what the join must report (plain Python and numpy, no code of the joiner)."""

from __future__ import annotations

import random
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.pipeline.records import Message

PREDICTIONS, LABELS = "preds.v1", "preds.labels.v1"
WINDOW_MS, HORIZON_MS, LATENESS_MS = 60_000, 300_000, 120_000
T0 = 1_717_200_000_000  # 2024-06-01T00:00:00Z, a window boundary

CONTRACT = f"""\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:fraud-predictions
version: 1.2.0
status: active
team:
  name: fraud-ml
  members:
    - username: ml@example.com
      role: owner
support:
  - channel: "#fraud-ml"
    tool: slack
schema:
  - name: predictions
    physicalName: {PREDICTIONS}
    physicalType: topic
    customProperties:
      - property: qstreams.eventTime
        value: predicted_at
      - property: qstreams.window
        value: 1m
      - property: qstreams.allowedLateness
        value: 2m
      - property: qstreams.prediction
        value:
          score: score
          label: predicted_label
          modelVersion: model_version
          positiveLabel: fraud
          predictionId: prediction_id
          labels: {{topic: {LABELS}, predictionId: prediction_id, label: actual, labelTime: labelled_at, horizon: 5m}}
    properties:
      - name: prediction_id
        logicalType: string
        required: true
      - name: model_version
        logicalType: string
        required: true
      - name: score
        logicalType: number
        required: true
      - name: predicted_label
        logicalType: string
        required: true
      - name: predicted_at
        logicalType: timestamp
        required: true
"""


def contract(text: str = CONTRACT) -> Contract:
    return parse_contract(text, "fraud.odcs.yaml")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Data:
    """Predictions ``(pid, t, version, score, predicted positive)`` and labels ``(pid, t, actual)``, and the
    messages carrying them in arrival order (duplicates included)."""

    predictions: list[tuple[str, int, str, float, bool]] = field(default_factory=list)
    labels: list[tuple[str, int, bool]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


def prediction_record(pid: str, t: int, version: str, score: float, positive: bool) -> dict[str, Any]:
    return {"prediction_id": pid, "model_version": version, "score": score,
            "predicted_label": "fraud" if positive else "legit", "predicted_at": iso(t)}  # fmt: skip


def label_record(pid: str, t: int, actual: bool) -> dict[str, Any]:
    return {"prediction_id": pid, "actual": "fraud" if actual else "legit", "labelled_at": iso(t)}


def generate(seed: int, n: int = 300, *, noise: dict[str, float] | None = None, duplicates: float = 0.05,
             partitions: int = 2, delay_s: tuple[float, float] = (-10, 400), missing: float = 0.1,
             orphans: int = 15, span_s: float = 600, arrival_s: float = 50) -> Data:  # fmt: skip
    """``n`` predictions over ``span_s`` seconds of two versions; labels ``delay_s`` after them (some past the
    horizon), ``missing`` of them never labelled, ``orphans`` labels of unknown ids; each record arrives
    ``U(0, arrival_s)`` after its time (so none is later than the allowed lateness), duplicates later still."""
    rng = random.Random(seed)
    noise = noise or {"A": 0.1, "B": 0.1}
    d = Data()
    arrivals: list[tuple[float, int, Message]] = []
    seq = 0

    def send(topic: str, pid: str, t: int, record: dict[str, Any], copies: int) -> None:
        nonlocal seq
        for c in range(copies):
            at = t + rng.uniform(0, arrival_s * 1000) * (1 + c)
            arrivals.append(
                (at, seq, Message(topic, zlib.crc32(pid.encode()) % partitions, 0, orjson.dumps(record), pid.encode()))
            )
            seq += 1

    for i in range(n):
        pid = f"p{seed}-{i}"
        version = "A" if rng.random() < 0.5 else "B"
        t = T0 + int(rng.uniform(0, span_s * 1000))
        actual = rng.random() < 0.3
        # a useful score: positives high, negatives low; wrong side with probability noise[version]
        side = actual if rng.random() >= noise[version] else not actual
        score = (rng.randrange(50, 100) if side else rng.randrange(0, 50)) / 100 + 0.005
        positive = score >= 0.5
        d.predictions.append((pid, t, version, score, positive))
        send(PREDICTIONS, pid, t, prediction_record(pid, t, version, score, positive), 1 + (rng.random() < duplicates))
        if rng.random() < missing:
            continue
        tl = t + int(rng.uniform(*delay_s) * 1000)
        d.labels.append((pid, tl, actual))
        send(LABELS, pid, tl, label_record(pid, tl, actual), 1 + (rng.random() < duplicates))
    for j in range(orphans):
        pid, tl = f"o{seed}-{j}", T0 + int(rng.uniform(0, span_s * 1000))
        d.labels.append((pid, tl, rng.random() < 0.5))
        send(LABELS, pid, tl, label_record(pid, tl, d.labels[-1][2]), 1)
    arrivals.sort(key=lambda a: (a[0], a[1]))
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    for at, _, m in arrivals:
        tp = (m.topic, m.partition)
        d.messages.append(Message(m.topic, m.partition, offsets[tp], m.value, m.key, (), int(at)))
        offsets[tp] += 1
    return d


def expected(
    data: Data, window_ms: int = WINDOW_MS, horizon_ms: int = HORIZON_MS
) -> dict[tuple[int, str], dict[str, Any]]:
    """What each (window start, model version) must report, computed directly from the whole data."""
    preds = {p[0]: p for p in data.predictions}
    labels = {lab[0]: lab for lab in data.labels}
    out: dict[tuple[int, str], dict[str, Any]] = {}

    def cell(t: int, version: str) -> dict[str, Any]:
        key = (t - t % window_ms, version)
        return out.setdefault(key, {"pairs": [], "unmatched": 0, "orphans": 0})

    matched = set()
    for pid, (_, tp, version, score, positive) in preds.items():
        lab = labels.get(pid)
        if lab is not None and abs(lab[1] - tp) <= horizon_ms:
            matched.add(pid)
            cell(tp, version)["pairs"].append((score, positive, lab[2], max(0, lab[1] - tp) / 1000))
        else:
            cell(tp, version)["unmatched"] += 1
    for pid, (_, tl, _) in labels.items():
        if pid not in matched:
            cell(tl, "")["orphans"] += 1
    return {k: summarize(v) for k, v in out.items()}


def summarize(c: dict[str, Any]) -> dict[str, Any]:
    pairs = c["pairs"]
    s = np.array([p[0] for p in pairs], dtype=float)
    pred = np.array([p[1] for p in pairs], dtype=bool)
    y = np.array([p[2] for p in pairs], dtype=bool)
    delays = np.array([p[3] for p in pairs], dtype=float)
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    tn, fn = int((~pred & ~y).sum()), int((~pred & y).sum())
    pos, neg = s[y], s[~y]
    auc = None
    if len(pos) and len(neg):  # Mann–Whitney: P(score of a positive > score of a negative), ties half
        auc = float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
                    / (len(pos) * len(neg)))  # fmt: skip
    ece = None
    if len(s):
        b = np.clip(np.floor(s * 10).astype(int), 0, 9)
        ece = float(sum(abs(s[b == k].sum() - y[b == k].sum()) for k in range(10)) / len(s))
    n = len(pairs)
    return {
        "count": n, "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        "accuracy": (tp + tn) / n if n else None, "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None, "roc_auc": auc, "calibration_error": ece,
        "label_delay": {"count": n, "mean_seconds": float(delays.mean()) if n else None,
                        "max_seconds": float(delays.max()) if n else None},
        "unmatched_predictions": c["unmatched"], "orphan_labels": c["orphans"],
    }  # fmt: skip
