"""``qstreams events tail``: what the quality-event topic says, live (pure part: filter, aggregate, render).

:class:`TailView` is fed events and renders, with rich: the event rate per contract (last minute),
the latest window verdicts, the top failing rules, and the open incidents with their owners. The
filter (:class:`TailFilter`) keeps the events of one contract, of one type (``window.summary`` or
the full type) and at or above a severity. :func:`json_line` is one event as a JSON line (``--json``).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from cloudevents.core.v1.event import CloudEvent
from rich.console import Group
from rich.table import Table

from streams.events.codec import event_data
from streams.events.types import EventSeverity, EventType, iso_utc

__all__ = ["TailFilter", "TailView", "json_line"]

_PREFIX = "io.qualitystreams."


@dataclass(frozen=True)
class TailFilter:
    contract: str | None = None
    type: str | None = None
    severity: str | None = None  # the least severity shown

    def matches(self, event: CloudEvent) -> bool:
        if self.contract is not None and event.get_extension("contractid") != self.contract:
            return False
        if self.type is not None:
            t = event.get_type()
            short = t.removeprefix(_PREFIX).rsplit(".v", 1)[0]
            if self.type not in (t, short):
                return False
        if self.severity is not None:
            got = str(event.get_extension("severity") or "ok")
            if got not in set(EventSeverity) or EventSeverity(got).rank < EventSeverity(self.severity).rank:
                return False
        return True


def json_line(event: CloudEvent) -> str:
    time_ = event.get_time()
    line = {
        "id": event.get_id(), "type": event.get_type(), "time": iso_utc(time_) if time_ else None,
        "contract": event.get_extension("contractid"), "severity": event.get_extension("severity"),
        "subject": event.get_subject(), "data": event_data(event),
    }  # fmt: skip
    return orjson.dumps(line).decode()


@dataclass
class TailView:
    now: Callable[[], float] = time.monotonic
    rate_window_s: float = 60.0
    seen: dict[str, collections.deque[float]] = field(default_factory=dict)
    totals: collections.Counter[str] = field(default_factory=collections.Counter)
    verdicts: collections.deque[dict[str, Any]] = field(default_factory=lambda: collections.deque(maxlen=8))
    failing: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, event: CloudEvent) -> None:
        contract = str(event.get_extension("contractid") or event.get_source())
        now = self.now()
        stamps = self.seen.setdefault(contract, collections.deque())
        stamps.append(now)
        self.totals[contract] += 1
        kind, data = event.get_type(), event_data(event)
        if kind == EventType.WINDOW_SUMMARY:
            w = data.get("window") or {}
            verdict = {"contract": contract, "schema": data.get("schema"), "start": w.get("start"), "end": w.get("end"),
                       "records": data.get("records"), "quarantined": data.get("quarantined"),
                       "passed": data.get("passed")}  # fmt: skip
            self.verdicts.appendleft(verdict)
            for c in data.get("checks") or ():
                if not c.get("passed") and c.get("failures"):
                    self.failing[(contract, str(c.get("name")))] += int(c["failures"])
        elif kind == EventType.RULE_VIOLATION:
            rule = str(data.get("rule", {}).get("name") if isinstance(data.get("rule"), dict) else data.get("rule"))
            self.failing[(contract, rule)] += int(data.get("failures") or 0)
        elif kind == EventType.POLICY_TRIGGERED:
            owner = data.get("owner") or {}
            self.incidents[data["incident"]["id"]] = {
                "contract": contract, "policy": data["policy"]["name"], "severity": data["policy"]["severity"],
                "action": data["action"]["type"], "opened_at": data["incident"]["opened_at"],
                "owner": ", ".join(owner.get("owners") or ()) or owner.get("team") or "unowned",
                "channel": owner.get("support_channel") or "-",
            }  # fmt: skip
        elif kind == EventType.POLICY_RESOLVED:
            self.incidents.pop(data["incident"]["id"], None)

    def rates(self) -> dict[str, float]:
        """Events per second per contract over the last ``rate_window_s``."""
        cutoff = self.now() - self.rate_window_s
        out = {}
        for contract, stamps in self.seen.items():
            while stamps and stamps[0] < cutoff:
                stamps.popleft()
            out[contract] = len(stamps) / self.rate_window_s
        return out

    def render(self) -> Group:
        rates = Table(title="Events per contract", expand=True)
        for col in ("contract", "events/s (1 min)", "total"):
            rates.add_column(col)
        for contract, rate in sorted(self.rates().items()):
            rates.add_row(contract, f"{rate:.2f}", str(self.totals[contract]))
        windows = Table(title="Latest window verdicts", expand=True)
        for col in ("contract", "schema", "window", "records", "quarantined", "verdict"):
            windows.add_column(col)
        for v in self.verdicts:
            verdict = "[green]passed[/]" if v["passed"] else "[red]failed[/]"
            windows.add_row(v["contract"], str(v["schema"]), f"{v['start']} .. {v['end']}", str(v["records"]),
                            str(v["quarantined"]), verdict)  # fmt: skip
        rules = Table(title="Top failing rules", expand=True)
        for col in ("contract", "rule", "failures"):
            rules.add_column(col)
        for (contract, rule), n in self.failing.most_common(8):
            rules.add_row(contract, rule, str(n))
        open_ = Table(title=f"Open incidents ({len(self.incidents)})", expand=True)
        for col in ("incident", "contract", "policy", "severity", "action", "owner", "channel", "opened"):
            open_.add_column(col)
        for iid, i in sorted(self.incidents.items(), key=lambda kv: kv[1]["opened_at"]):
            open_.add_row(iid[:12], i["contract"], i["policy"], i["severity"], i["action"], i["owner"], i["channel"],
                          i["opened_at"])  # fmt: skip
        return Group(rates, windows, rules, open_)
