"""The contract version that judges each window: the one whose workers counted its records (pure: no Kafka).

After a contract upgrade (or during a rolling one) a window can hold partials of two versions: each is judged
by its own. The merger's worker runs one version; every worker writes the text of the version it runs to the
stream's partition of the internal topic when it starts (:class:`~streams.windows.codec.ContractText`), and
:class:`Judges` parses it with the normal loader (a contract never executes code) to judge that version's
windows. When that text is missing (a worker older than this record), does not load, or is not the version
the partials name, the window is still published, with its counts and without checks, stating why
(:attr:`~streams.windows.finalize.WindowVerdict.unjudged`): its records are never dropped, nor judged by another
version's rules.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.errors import StreamsError
from streams.profiles.monitor import DriftMonitor
from streams.windows.codec import ContractText
from streams.windows.finalize import WindowVerdict, finalize
from streams.windows.partial import WindowPartial
from streams.windows.plan import WindowPlan

__all__ = ["Judges"]

log = logging.getLogger(__name__)


class Judges:
    """The plan (and drift monitor) of every contract version a stream's merger meets, built once per version."""

    def __init__(self, plan: WindowPlan, monitor: DriftMonitor | None) -> None:
        self.plan, self.monitor = plan, monitor
        self._plans: dict[tuple[str, str], tuple[WindowPlan, DriftMonitor | None]] = {}

    def judge(
        self, partial: WindowPartial, contracts: Mapping[tuple[str, str], ContractText], *, closed_ms: int
    ) -> tuple[Contract, WindowVerdict]:
        """The verdict of a final window, and the contract (version) that judged it, for its events."""
        c, k = self.plan.contract, partial.key
        if (k.contract_version, partial.contract_sha256) == (c.version, c.sha256):
            return c, finalize(self.plan, partial, self.monitor, closed_ms=closed_ms)
        found = self._plan_of(partial, contracts)
        if isinstance(found, str):
            log.warning("stream-time: window %s of %s published without checks: %s", k.start_ms, k.topic, found)
            stand_in = self._stand_in(partial)
            verdict = finalize(WindowPlan.of(stand_in, stand_in.schema(k.schema)), partial, closed_ms=closed_ms)
            return stand_in, dataclasses.replace(verdict, unjudged=found)
        plan, monitor = found
        return plan.contract, finalize(plan, partial, monitor, closed_ms=closed_ms)

    def _plan_of(
        self, partial: WindowPartial, contracts: Mapping[tuple[str, str], ContractText]
    ) -> tuple[WindowPlan, DriftMonitor | None] | str:
        """The plan of the version that counted ``partial``, or why there is none."""
        k, sha = partial.key, partial.contract_sha256
        if (k.contract_version, sha) in self._plans:
            return self._plans[(k.contract_version, sha)]
        ref = f"{k.contract_id}@{k.contract_version} (sha256 {sha[:12]})"
        text = contracts.get((k.contract_version, sha))
        if text is None:
            return (
                f"contract {ref}, whose workers counted these records, was not found in the stream-time topic "
                f"(a worker older than the contract record, or the record was lost); this worker runs "
                f"{self.plan.contract.ref}, whose rules are not that version's"
            )
        try:
            contract = parse_contract(text.text, path=text.path)
            schema = contract.schema(k.schema)
        except StreamsError as exc:
            return f"contract {ref}, whose workers counted these records, does not load here: {exc}"
        if (contract.id, contract.version, contract.sha256) != (k.contract_id, k.contract_version, sha):
            return f"the contract text stored for {ref} is {contract.ref} (sha256 {contract.sha256[:12]}) instead"
        try:
            monitor = DriftMonitor.from_contract(contract, schema.name)
        except (StreamsError, OSError) as exc:  # its reference profile may be gone: judged without drift
            log.warning("stream-time: drift of %s is not judged on its windows: %s", ref, exc)
            monitor = None
        self._plans[(k.contract_version, sha)] = found = (WindowPlan.of(contract, schema), monitor)
        return found

    def _stand_in(self, partial: WindowPartial) -> Contract:
        """This worker's contract named as the version that counted ``partial``, without rules: the identity of
        that version's events, which carry counts only (no field, no rule: nothing of this version judges them)."""
        c, k = self.plan.contract, partial.key
        schemas = tuple(dataclasses.replace(so, fields=(), rules=()) for so in c.schemas if so.name == k.schema)
        return dataclasses.replace(
            c, version=k.contract_version, sha256=partial.contract_sha256, schemas=schemas, document=None
        )
