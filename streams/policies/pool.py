"""The all-versions value of a per-model metric: the model versions of one window pooled.

``prediction.confidence`` and ``model.performance`` events report one model version each, so a policy that
names no ``model_version`` (the metric over all of them) needs every version of a window first. The pool
keeps, per (event type, contract, schema object), the figures of the latest window's versions. The events
name every version published for their window (``window_versions``): the window closes, and its pooled
observation (``model_version`` None) is judged, as soon as the last of them is in, with the per-version
ones. Events without that list (older workers and joiners) leave the window open until the first event of a
**later** window closes it, one window behind; for ``prediction.confidence`` the agent also closes it on the
``window.summary`` of a later window (:meth:`VersionPool.close_before`): a worker publishes a window's
confidence events right after its summary, so the window's last versions are in by then. An event of an
earlier window than the open one (a replay, a late duplicate) changes nothing; one of the open window's
version again replaces that version's figures. A window's events after it closed (a re-publication) open it
again; its pooled observation is then a replay to the policies, which judge a window once.

Pooling is exact where the events allow it, never a plain mean of rates:

* confidence: the mean confidence, the low-confidence share and the expected accuracy (CBPE) are the
  versions' values weighted by their prediction counts; ``confidence.mean_change`` compares that mean with
  the versions' reference means weighted the same way (only when every version was judged against the
  reference);
* performance: accuracy, precision and recall from the summed confusion matrices; ROC AUC and the
  calibration error cannot be pooled from the events (they need the score histograms), so the pooled
  window has them only when a single version had labelled predictions.

The pool is part of the agent's state (one compacted record per key), so a restart neither loses an open
window nor judges one twice.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.events.types import iso_utc, parse_utc, to_utc
from streams.policies.metrics import Observation
from streams.policies.observe import confidence_metrics, performance_metrics

__all__ = ["PoolKey", "VersionPool", "pooled_metrics", "window_versions"]

PoolKey = tuple[str, str, str]  # (event type, contract, schema object)
Parts = dict[str, float | None]


def window_versions(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The event's ``window_versions`` (every version published for its window; empty from older publishers)."""
    versions = data.get("window_versions")
    return tuple(str(v) for v in versions) if isinstance(versions, list) else ()


def _weighted(live: list[Parts], name: str) -> float | None:
    total = sum(p["n"] or 0 for p in live)
    if not total or any(p[name] is None for p in live):
        return None
    return sum((p["n"] or 0) * (p[name] or 0.0) for p in live) / total


def pooled_metrics(source: str, versions: dict[str, Parts]) -> dict[str, float]:
    """The all-versions metrics (unqualified keys) of one window's versions' figures."""
    live = [p for _, p in sorted(versions.items()) if p["n"]]
    if source == "prediction.confidence":
        parts = {k: _weighted(live, k) for k in ("mean", "low", "ref", "expected")}
        return confidence_metrics(parts)
    sums: Parts = {k: sum(p[k] or 0.0 for p in live) for k in ("tp", "fp", "tn", "fn")}
    tp, fp, tn, fn = (sums[k] or 0.0 for k in ("tp", "fp", "tn", "fn"))
    one = live[0] if len(live) == 1 else {}
    return performance_metrics({
        "accuracy": (tp + tn) / (tp + fp + tn + fn) if tp + fp + tn + fn else None,
        "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
        "roc_auc": one.get("roc_auc"), "calibration_error": one.get("calibration_error"),
    })  # fmt: skip


@dataclass
class _Open:
    start: datetime
    end: datetime
    contract_version: str
    versions: dict[str, Parts] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"start": iso_utc(self.start), "end": iso_utc(self.end), "contract_version": self.contract_version,
                "versions": self.versions}  # fmt: skip


@dataclass
class VersionPool:
    """The open window of each (event type, contract, schema object); see the module docstring."""

    open: dict[PoolKey, _Open] = field(default_factory=dict)

    def add(self, obs: Observation, parts: Parts, window_versions: Collection[str] = ()) -> list[Observation]:
        """Take one version's event; returns the pooled observations of the windows it closes: the open one of an
        earlier window, and its own once every version of ``window_versions`` (the event's) is in."""
        assert obs.source is not None and obs.model_version is not None
        key = (obs.source, obs.contract, obs.schema)
        start, end = to_utc(obs.window_start), to_utc(obs.window_end)
        current = self.open.get(key)
        closed: list[Observation] = []
        if current is not None and (start, end) == (current.start, current.end):
            current.versions[obs.model_version] = dict(parts)
        elif current is not None and start < current.end:
            return []  # an earlier window: a replay or a late duplicate
        else:
            closed = self.close_before(key, start)
            current = self.open[key] = _Open(start, end, obs.contract_version, {obs.model_version: dict(parts)})
        if window_versions and current.versions.keys() >= set(window_versions):
            closed.append(self._close(key))
        return closed

    def close_before(self, key: PoolKey, start: datetime) -> list[Observation]:
        """The pooled observation of the open window of ``key`` if it ends by ``start`` (the start of a later window of
        the stream, whose events follow all of the open one's), which is then closed; nothing otherwise."""
        current = self.open.get(key)
        if current is None or current.end > to_utc(start):
            return []
        return [self._close(key)]

    def _close(self, key: PoolKey) -> Observation:
        """The pooled observation of the open window of ``key``, which is closed."""
        current = self.open.pop(key)
        source, contract, schema = key
        return Observation(
            contract, schema, current.start, current.end, current.contract_version,
            records=int(sum(p["n"] or 0 for p in current.versions.values())),
            metrics=pooled_metrics(source, current.versions), source=source, model_version=None,
        )  # fmt: skip

    def record(self, key: PoolKey) -> dict[str, Any] | None:
        """The state record of one key (None: nothing open)."""
        current = self.open.get(key)
        return None if current is None else current.as_dict()

    def restore(self, key: PoolKey, value: dict[str, Any] | None) -> None:
        if value is None:
            self.open.pop(key, None)
            return
        versions = {str(v): {str(k): None if x is None else float(x) for k, x in p.items()}
                    for v, p in value["versions"].items()}  # fmt: skip
        self.open[key] = _Open(
            parse_utc(value["start"]), parse_utc(value["end"]), str(value["contract_version"]), versions
        )
