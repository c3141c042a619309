"""The policy agent's logic, without Kafka: consumed records in, records to produce out.

:class:`PolicyAgent` is fed the records of the quality-event topic and the command topic (:meth:`handle`)
and answers with the records to produce: ``policy.triggered`` / ``policy.resolved`` events,
``policy.action`` events, control records (``quarantine-stream``), command records (``retrain-candidate``
/ ``rollback-candidate``). Its whole state is a set of keyed records for a compacted topic
(:meth:`state_records`, :meth:`restore`): one per policy (the incident book), one per consumed input
partition (the next offset), one per pending webhook delivery (the outbox), one per window being pooled
(model versions: ``pool``; contract texts: ``texts``). The runner (:mod:`streams.policies.runner`)
produces a poll's outputs and the changed state records in **one Kafka transaction**, so after a crash
the restored state and the produced decisions agree: each incident is triggered and resolved exactly
once, whatever is replayed. Webhooks are side effects outside Kafka: a decision puts one delivery per
webhook in the outbox (in the same transaction); the runner delivers it after the commit and removes it
(a second transaction). A crash between the two redelivers it (PagerDuty's ``dedup_key`` and
Alertmanager's ``incident`` label make that the same incident). A delivery that fails is reported once as
a ``policy.action`` ``failed`` event and retried every ``redeliver_after_s`` for ``max_delivery_rounds``
rounds; the incident stays open either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.contracts.model import Contract
from streams.errors import ContractError, EventDataError, StreamsError
from streams.events.actions import policy_action, policy_command
from streams.events.codec import event_data, from_kafka, to_kafka
from streams.events.types import EventType, event_id, iso_utc, to_utc
from streams.pipeline.records import Message, OutRecord
from streams.policies.actions import Alert, Delivery, alert_of
from streams.policies.config import PolicySettings, Webhook
from streams.policies.control import Engaged, control_record
from streams.policies.emit import decision_event
from streams.policies.incidents import Decision, DecisionKind, IncidentBook
from streams.policies.lag import TopicLag, lag_observations, lag_topics
from streams.policies.metrics import METRICS, Observation
from streams.policies.observe import (
    confidence_observation_of,
    drift_observation_of,
    no_schema_drift,
    observation_of,
    performance_observation_of,
    schema_drift_observation_of,
    version_parts,
)
from streams.policies.pool import VersionPool, window_versions
from streams.policies.spec import Action, parse_policies
from streams.policies.telemetry import PolicyMetrics, policy_phase
from streams.policies.texts import ContractPool

__all__ = ["PolicyAgent", "distinct_contracts", "policy_phase"]


def _opens(d: Decision) -> bool:
    return d.kind is DecisionKind.TRIGGERED


log = logging.getLogger(__name__)

_MS, _EPOCH = timedelta(milliseconds=1), datetime(1970, 1, 1, tzinfo=UTC)

#: the window events policies are judged on, and how each becomes an observation (see ``_observations``)
_READERS: dict[str, Callable[[dict[str, Any]], Observation]] = {
    EventType.WINDOW_SUMMARY: observation_of,
    EventType.DISTRIBUTION_DRIFT: drift_observation_of,
    EventType.SCHEMA_DRIFT: schema_drift_observation_of,
    EventType.PREDICTION_CONFIDENCE: confidence_observation_of,
    EventType.MODEL_PERFORMANCE: performance_observation_of,
}
_WINDOW_EVENTS = frozenset(_READERS)


def distinct_contracts(contracts: Sequence[Contract]) -> dict[str, Contract]:
    """The contracts by id; :class:`ContractError` when two have one id (two versions of one contract: their
    policies share their incident keys, and one version's would silently never be judged)."""
    by_id: dict[str, Contract] = {}
    for c in contracts:
        if c.id in by_id:
            raise ContractError(
                f"Contract {c.id!r} is given twice (versions {by_id[c.id].version} and {c.version}); a policy agent "
                "judges one version of a contract: give the one in force.", path=c.path,
            )  # fmt: skip
        by_id[c.id] = c
    return by_id


class PolicyAgent:
    """See the module docstring. ``now`` is the wall clock (seconds), injectable for tests."""

    def __init__(
        self, contracts: Sequence[Contract], settings: PolicySettings, events_topic: str, *,
        metrics: PolicyMetrics | None = None, now: Callable[[], float] | None = None, max_skew_s: float = 300.0,
    ) -> None:  # fmt: skip
        self.contracts = distinct_contracts(contracts)
        self.book = IncidentBook(tuple(p for c in contracts for p in parse_policies(c)))
        self.settings, self.events_topic = settings, events_topic
        self.metrics = metrics or PolicyMetrics()
        self.now = now or time.time
        self.offsets: dict[tuple[str, int], int] = {}
        self.outbox: dict[str, dict[str, Any]] = {}
        self.skipped = 0
        self.max_skew_s = max_skew_s
        self.ahead = 0  # window events of windows beyond the wall clock (only skewed records reached them)
        self.pool = VersionPool()
        self.texts = ContractPool()  # one window's summaries of several contract texts
        self._dirty: set[bytes] = set()
        self._seq = 0
        self._webhooks = {w.name: w for w in settings.webhooks}
        self.metrics.update(self.book)

    # -- state ---------------------------------------------------------------------------------

    def _key(self, *parts: Any) -> bytes:
        return orjson.dumps([self.settings.agent_id, *parts])

    def restore(self, records: Iterable[Message]) -> None:
        """Continue from the state topic's records (in offset order; later ones win, tombstones delete)."""
        policies: dict[str, dict[str, Any]] = {}
        for r in records:
            try:
                agent, kind, *rest = orjson.loads(r.key or b"")
                if agent != self.settings.agent_id:
                    continue
                value = orjson.loads(r.value) if r.value is not None else None
            except (orjson.JSONDecodeError, TypeError, ValueError):
                log.warning("skipping state record at offset %d: not the agent's (key %r)", r.offset, r.key)
                continue
            if kind == "offset":
                self.offsets[(str(rest[0]), int(rest[1]))] = int(value) if value is not None else 0
            elif kind == "pool":
                self.pool.restore((str(rest[0]), str(rest[1]), str(rest[2])), value)
            elif kind == "texts":
                self.texts.restore((str(rest[0]), str(rest[1])), value)
            elif kind in ("policy", "outbox"):
                into = policies if kind == "policy" else self.outbox
                if value is None:
                    into.pop(rest[0], None)
                else:
                    into[rest[0]] = value
        self.book = IncidentBook.restore(self.book.policies, policies)
        self._dirty.clear()
        self.metrics.update(self.book)

    def rewind(self, topic: str, partition: int) -> None:
        """Forget the stored offset of an input partition (the topic was recreated or truncated below it): its records
        are all taken from its start; the windows already judged among them are replays to the book."""
        self.offsets.pop((topic, partition), None)
        self._dirty.add(self._key("offset", topic, partition))

    def reconcile(self, control: Iterable[Message]) -> list[OutRecord]:
        """Release the quarantines of this agent's contracts that no open incident holds (the control topic's records,
        in offset order): a quarantine-stream policy removed from the contract, or whose action changed, while its
        incident was open left its stream quarantined for good (its state is dropped on restore; nothing resolves
        it). A tombstone and a ``policy.action`` ``released`` event each; the runner produces them at start."""
        engaged = Engaged()
        for r in control:
            engaged.apply(r.key, r.value)
        held = {(p.contract, p.schema, p.name) for p in self.book.policies
                if p.action is Action.QUARANTINE_STREAM and p.key in self.book.open_incidents()}  # fmt: skip
        out: list[OutRecord] = []
        for (contract_id, schema), policies in sorted(engaged.by_binding.items()):
            contract = self.contracts.get(contract_id)
            for name, incident in sorted(policies.items()):
                if contract is None or (contract_id, schema, name) in held:
                    continue  # another agent's contract, or in force
                log.warning("quarantine of %s/%s by policy %s (incident %s) released: no open incident holds it "
                            "(the policy was removed or its action changed)", contract_id, schema, name,
                            incident)  # fmt: skip
                out.append(control_record(self.settings.control_topic, contract_id, schema, name, engaged=False,
                                          incident=incident, since=""))  # fmt: skip
                try:
                    event = policy_action(
                        contract, schema=schema, incident_id=incident, policy=name, decision="resolved",
                        action=str(Action.QUARANTINE_STREAM), model_version=None, channel="quarantine",
                        target=f"{contract_id}/{schema}", status="released", time=datetime.now(UTC),
                    )  # fmt: skip
                except (KeyError, StreamsError) as exc:  # the schema object is gone too: the tombstone still goes
                    log.warning("no policy.action event for that release: %s", exc)
                else:
                    out.append(self._event(event))
        return out

    def state_records(self, topic: str) -> list[OutRecord]:
        """The state records changed since the last call (to produce with the outputs, in one transaction)."""
        snapshot, out = self.book.snapshot(), []
        for key in sorted(self._dirty):
            _, kind, *rest = orjson.loads(key)
            value: Any
            if kind == "policy":
                value = snapshot.get(rest[0])
            elif kind == "offset":
                value = self.offsets.get((rest[0], rest[1]))
            elif kind == "pool":
                value = self.pool.record((rest[0], rest[1], rest[2]))
            elif kind == "texts":
                value = self.texts.record((rest[0], rest[1]))
            else:
                value = self.outbox.get(rest[0])
            out.append(OutRecord(topic, None if value is None else orjson.dumps(value), key, partition=0))
        self._dirty.clear()
        return out

    # -- input ---------------------------------------------------------------------------------

    def handle(self, msg: Message) -> list[OutRecord]:
        """One consumed record of the quality-event or command topic; malformed ones are logged and skipped."""
        tp = (msg.topic, msg.partition)
        if msg.offset < self.offsets.get(tp, 0):
            return []  # consumed before the restart: its outputs are already on the topics
        self.offsets[tp] = msg.offset + 1
        self._dirty.add(self._key("offset", msg.topic, msg.partition))
        try:
            event = from_kafka(msg.key, msg.value, msg.headers)
            kind = event.get_type()
            if kind in _WINDOW_EVENTS:
                decisions = []
                for obs in self._observations(str(kind), event_data(event)):
                    decisions += self.book.observe(obs)
                    for p in self.book.policies:  # every state it touched changed (last window, streaks)
                        if (p.contract, p.schema) == (obs.contract, obs.schema):
                            self._dirty.add(self._key("policy", p.key))
            elif kind == EventType.POLICY_COMMAND:
                decisions = self._command(event_data(event), event.get_time())
            else:
                return []
        except Exception as exc:  # a record of another producer, garbage: never stop the agent
            self.skipped += 1
            self.metrics.skipped.inc()
            log.warning("skipping record %s[%d]@%d: %s: %s", msg.topic, msg.partition, msg.offset,
                        type(exc).__name__, str(exc)[:300])  # fmt: skip
            return []
        out = [r for d in decisions for r in self._decided(d)]
        self.metrics.update(self.book)  # states move without decisions too (pending, cooldown over)
        return out

    # -- consumer lag (measured by the runner on a wall-clock interval) ----------------------------

    def lag_topics(self) -> list[str]:
        """The source topics whose consumer lag some ``lag.*`` policy watches (none: the runner measures nothing)."""
        return lag_topics(self.contracts, self.book.policies)

    def observe_lag(self, lags: Mapping[str, TopicLag], start: datetime, end: datetime) -> list[OutRecord]:
        """Judge the ``lag.*`` policies on one measurement of the interval ``[start, end)`` (wall clock)."""
        decisions = []
        for obs in lag_observations(self.contracts, self.book.policies, lags, start, end):
            decisions += self.book.observe(obs)
            for p in self.book.policies:
                if (p.contract, p.schema) == (obs.contract, obs.schema):
                    self._dirty.add(self._key("policy", p.key))
        out = [r for d in decisions for r in self._decided(d)]
        self.metrics.update(self.book)
        return out

    def _declared(self, obs: Observation) -> tuple[str, ...]:
        schema = next((so for so in self.contracts[obs.contract].schemas if so.name == obs.schema), None)
        return () if schema is None else tuple(f.name for f in schema.fields)

    def _pools(self, obs: Observation) -> bool:
        """Some policy of the observation's schema object takes the all-versions value of its source."""
        return any((p.contract, p.schema) == (obs.contract, obs.schema) and p.condition.subject is None
                   and METRICS[p.condition.metric].source == obs.source for p in self.book.policies)  # fmt: skip

    def _observations(self, kind: str, data: dict[str, Any]) -> list[Observation]:
        """The observations of one window event (none for another contract's, or a batch's ``schema.drift``)."""
        source = kind.removeprefix("io.qualitystreams.").removesuffix(".v1")
        if kind == EventType.SCHEMA_DRIFT and "records" not in data:
            return []  # a batch's (STREAMS_BATCH_EVENTS): its records span no window of the stream
        obs = _READERS[kind](data)
        if obs.contract not in self.contracts:
            return []
        _check_window(source, obs, self.now() + self.max_skew_s)
        if obs.window_start.timestamp() > self.now() + self.max_skew_s:
            # only records with skewed event times reach such a window (the workers publish it on an idle close):
            # taken, it would make every window of the stream until then a replay (every policy blind)
            self.ahead += 1
            log.warning("skipping %s of %s/%s: its window starts at %s, beyond the wall clock plus %gs (skewed "
                        "event times)", source, obs.contract, obs.schema, iso_utc(obs.window_start),
                        self.max_skew_s)  # fmt: skip
            return []
        if kind == EventType.WINDOW_SUMMARY:
            # one window's summaries of several contract texts (an upgrade) pooled; a summary that says its window's
            # records carried exactly the declared fields is the clear schema-drift window no schema.drift event
            # reports (one follows a summary that says otherwise)
            was = (obs.contract, obs.schema) in self.texts.open
            taken = self.texts.take(obs, data)
            if was or (obs.contract, obs.schema) in self.texts.open:
                self._dirty.add(self._key("texts", obs.contract, obs.schema))
            out = [x for o, clean in taken for x in ([o, no_schema_drift(o, self._declared(o))] if clean else [o])]
            # a worker publishes a window's prediction.confidence events right after its summary: the summary of a
            # later window closes the pooled confidence window (else the last one before the model's predictions
            # stopped, or the stream's last, was never judged)
            key = ("prediction.confidence", obs.contract, obs.schema)
            if key in self.pool.open:
                self._dirty.add(self._key("pool", *key))
                return [*self.pool.close_before(key, obs.window_start), *out]
            return out
        if kind == EventType.SCHEMA_DRIFT:
            return [schema_drift_observation_of(data, self._declared(obs))]
        if obs.model_version is None or not self._pools(obs):
            return [obs]
        pool_key = (source, obs.contract, obs.schema)
        self._dirty.add(self._key("pool", *pool_key))
        return [obs, *self.pool.add(obs, version_parts(source, data), window_versions(data))]

    def _command(self, data: dict[str, Any], time: datetime | None) -> list[Decision]:
        if data.get("command") != "resolve-incident":
            return []  # retrain / rollback requests are for automation (ours, echoed back)
        incident = str(data["incident"]["id"])
        at = to_utc(time or datetime.now(UTC))
        opened = next((s.incident.opened_at for s in self.book.states.values()
                       if s.incident is not None and s.incident.id == incident), None)  # fmt: skip
        if opened is None:
            log.info("resolve-incident %s: not open here (already resolved, or another agent's)", incident)
            return []
        return self.book.resolve(incident, max(at, opened), str(data.get("requested_by") or "unknown"))

    # -- decisions -----------------------------------------------------------------------------

    def _event(self, event: Any, topic: str | None = None) -> OutRecord:
        key, value, headers = to_kafka(event)
        return OutRecord(topic or self.events_topic, value, key, tuple(headers))

    def _decided(self, d: Decision) -> list[OutRecord]:
        policy, contract = d.policy, self.contracts[d.policy.contract]
        self._dirty.add(self._key("policy", policy.key))
        event = decision_event(d, contract)
        self.metrics.decisions.labels(contract.id, policy.name, str(d.kind)).inc()
        log.warning("policy %s of %s: incident %s %s", policy.name, contract.id, d.incident_id, d.kind)
        out = [self._event(event)]
        decision, at = str(d.kind), d.window_end

        def action_event(channel: str, target: str, status: str) -> OutRecord:
            self.metrics.actions.labels(channel, target, "sent").inc()
            return self._event(policy_action(
                contract, schema=policy.schema, incident_id=d.incident_id, policy=policy.name, decision=decision,
                action=str(policy.action), model_version=policy.model_version, channel=channel, target=target,
                status=status, time=at,
            ))  # fmt: skip

        if policy.action is Action.QUARANTINE_STREAM:
            engaged = d.kind is DecisionKind.TRIGGERED
            out.append(control_record(self.settings.control_topic, contract.id, policy.schema, policy.name,
                                      engaged=engaged, incident=d.incident_id, since=iso_utc(d.opened_at)))  # fmt: skip
            out.append(
                action_event("quarantine", f"{contract.id}/{policy.schema}", "engaged" if engaged else "released")
            )
        elif (
            policy.action in (Action.RETRAIN_CANDIDATE, Action.ROLLBACK_CANDIDATE) and d.kind is DecisionKind.TRIGGERED
        ):
            command = policy_command(
                str(policy.action), incident_id=d.incident_id, time=at, contract=contract, schema=policy.schema,
                policy=policy.name, model_version=policy.model_version, requested_by=self.settings.agent_id,
                reason=f"policy {policy.name}: {policy.condition.describe()} on {len(d.windows)} window(s)",
            )  # fmt: skip
            out.append(self._event(command, self.settings.command_topic))
            out.append(action_event("command", self.settings.command_topic, "requested"))
        alert = alert_of(d, contract, event.get_id())
        for hook in self.settings.webhooks:
            if hook.wants(str(policy.action), contract.id):
                self._enqueue(alert, hook)
        return out

    def _enqueue(self, alert: Alert, hook: Webhook) -> None:
        did = event_id("delivery", alert.incident_id, alert.decision, hook.name)
        seq = 1 + max((int(e.get("seq", 0)) for e in self.outbox.values()), default=self._seq)
        self._seq = seq
        self.outbox[did] = {"webhook": hook.name, "alert": asdict(alert), "rounds": 0, "next_at": 0.0,
                            "reported": False, "seq": seq}  # fmt: skip
        self._dirty.add(self._key("outbox", did))

    # -- deliveries ----------------------------------------------------------------------------

    def due(self) -> list[tuple[str, Webhook, Alert]]:
        """The outbox entries to deliver now (entries of webhooks no longer configured are dropped)."""
        now, out = self.now(), []
        waiting: set[tuple[str, str]] = set()  # (incident, webhook) with an earlier delivery pending
        for did, entry in sorted(self.outbox.items(), key=lambda kv: int(kv[1].get("seq", 0))):
            hook = self._webhooks.get(entry["webhook"])
            ordered = (entry["alert"]["incident_id"], entry["webhook"])
            if hook is None:
                log.warning("dropping delivery %s: webhook %r is no longer configured", did, entry["webhook"])
                self.outbox.pop(did)
                self._dirty.add(self._key("outbox", did))
                continue
            if ordered in waiting:  # a resolution never overtakes its trigger
                continue
            waiting.add(ordered)
            if entry["next_at"] <= now:
                a = dict(entry["alert"])
                a["windows"] = tuple(tuple(w) for w in a["windows"])
                out.append((did, hook, Alert(**a)))
        return out

    def delivered(self, did: str, alert: Alert, result: Delivery) -> list[OutRecord]:
        """Record the outcome of a delivery: a ``policy.action`` event the first time it fails and when it is sent."""
        entry = self.outbox.get(did)
        if entry is None:
            return []
        self._dirty.add(self._key("outbox", did))
        self.metrics.actions.labels("webhook", result.webhook, "sent" if result.ok else "failed").inc()
        status: str | None = None
        if result.ok:
            self.outbox.pop(did)
            status = "sent"
        else:
            entry["rounds"] += 1
            entry["next_at"] = self.now() + self.settings.redeliver_after_s
            status = None if entry["reported"] else "failed"
            entry["reported"] = True
            log.warning("webhook %s: %s of incident %s not delivered after %d attempt(s): %s", result.webhook,
                        alert.decision, alert.incident_id, result.attempts, result.error)  # fmt: skip
            if entry["rounds"] >= self.settings.max_delivery_rounds:
                log.error("giving up webhook %s for incident %s after %d rounds", result.webhook, alert.incident_id,
                          entry["rounds"])  # fmt: skip
                self.outbox.pop(did)
        if status is None:
            return []
        contract = self.contracts.get(alert.contract)
        if contract is None:
            return []
        return [self._event(policy_action(
            contract, schema=alert.schema, incident_id=alert.incident_id, policy=alert.policy,
            decision=alert.decision, action=alert.action, model_version=alert.model_version, channel="webhook",
            target=result.webhook, status=status, time=datetime.now(UTC), attempts=result.attempts,
            error=result.error,
        ))]  # fmt: skip


def _check_window(source: str, obs: Observation, horizon_s: float) -> None:
    """:class:`EventDataError` unless the event's window can be one of the workers' windows: tumbling, epoch-aligned
    (its start a multiple of its length), longer than 0 and not longer than the time from the epoch to ``horizon_s``
    (the wall clock plus the skew allowed: a longer window starts at 0 and holds 1970's records only). Taken, a
    window ending in 9999 would make every real window of its schema object a replay, for good (its end is restored
    with the state after every restart)."""
    length = (obs.window_end - obs.window_start) // _MS
    start = (obs.window_start - _EPOCH) // _MS
    if length <= 0 or start % length or length > horizon_s * 1000:
        raise EventDataError(
            f"A {source} event of {obs.contract}/{obs.schema} names the window [{iso_utc(obs.window_start)}, "
            f"{iso_utc(obs.window_end)}), which is no stream window (a tumbling window starts at a multiple of its "
            "length since the epoch and lasts longer than 0 ms): a corrupt event, or one not of a worker."
        )
