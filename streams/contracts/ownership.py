"""Ownership: who answers for a contract, and the lint rule that a contract in use names someone.

ISO/IEC 42001 asks for defined ownership and documented response paths; every alert
quality-streams sends carries the owner, the support channel and the runbook. So a contract
whose ``status`` is not ``draft`` must name an **owner** (``team.name``, or a current team member
with ``role: owner``) and a **support channel** (a ``support`` entry), or ``qstreams contracts
lint`` fails with ``file:line`` (``--allow-unowned`` relaxes it). The runbook is an
``authoritativeDefinitions`` entry with ``type: runbook`` (optional).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from streams.contracts.model import Contract, Ownership
from streams.contracts.odcs_schema import Finding

__all__ = ["ownership_findings", "ownership_of"]

#: The status under which a contract may be unowned (work in progress).
DRAFT = "draft"


def _current(member: dict[str, Any], today: dt.date) -> bool:
    """A member is current unless their ``dateOut`` is past or their ``dateIn`` is still to come."""

    def day(key: str) -> dt.date | None:
        try:
            return dt.date.fromisoformat(str(member[key])[:10]) if member.get(key) else None
        except ValueError:
            return None

    out, joined = day("dateOut"), day("dateIn")
    return (out is None or out > today) and (joined is None or joined <= today)


def _runbook(definitions: Any) -> str | None:
    for d in definitions if isinstance(definitions, list) else []:
        if isinstance(d, dict) and str(d.get("type", "")).strip().lower() == "runbook" and d.get("url"):
            return str(d["url"])
    return None


def ownership_of(data: dict[str, Any], today: dt.date | None = None) -> Ownership:
    """The :class:`Ownership` a (schema-valid) ODCS document declares."""
    today = today or dt.date.today()
    team = data.get("team")
    team_name: str | None = None
    members: list[Any] = []
    team_definitions: Any = None
    if isinstance(team, dict):
        team_name = str(team["name"]) if team.get("name") else None
        members = team.get("members") or []
        team_definitions = team.get("authoritativeDefinitions")
    elif isinstance(team, list):  # v3.0.x: a list of members
        members = team
    current = [m for m in members if isinstance(m, dict) and _current(m, today)]

    def who(m: dict[str, Any]) -> str:
        return str(m.get("username") or m.get("name"))

    support = data.get("support") or []
    first: dict[str, Any] = next((s for s in support if isinstance(s, dict) and s.get("channel")), {})
    return Ownership(
        team=team_name,
        owners=tuple(who(m) for m in current if str(m.get("role", "")).strip().lower() == "owner"),
        members=tuple(who(m) for m in current if m.get("username") or m.get("name")),
        support_channel=str(first["channel"]) if first.get("channel") else None,
        support_url=str(first["url"]) if first.get("url") else None,
        support_tool=str(first["tool"]) if first.get("tool") else None,
        runbook_url=_runbook(data.get("authoritativeDefinitions")) or _runbook(team_definitions),
    )


def ownership_findings(contract: Contract, *, allow_unowned: bool = False) -> list[Finding]:
    """Lint findings for a contract in use (status not ``draft``) without an owner or a support channel."""
    if allow_unowned or contract.status.strip().lower() == DRAFT:
        return []
    path = contract.path or "<contract>"
    doc = contract.document
    data = doc.data if doc is not None else {}

    def line(key: str) -> int | None:
        if doc is None:
            return None
        return doc.line((key,)) if key in data else doc.line(("status",))

    own = contract.ownership
    out: list[Finding] = []
    status = f"the contract's status is {contract.status!r}"
    if not own.named:
        out.append(
            Finding(
                path,
                line("team"),
                f"{status} but it names no owner: add `team: {{name: ...}}` or a team member with `role: owner` "
                "(alerts are routed to them), set `status: draft`, or lint with --allow-unowned",
            )
        )
    if own.support_channel is None:
        out.append(
            Finding(
                path,
                line("support"),
                f"{status} but it names no support channel: add `support: [{{channel: ..., url: ...}}]` "
                "(alerts name it), set `status: draft`, or lint with --allow-unowned",
            )
        )
    return out
