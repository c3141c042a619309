"""The evidence bundle of one contract, for an assessor: Markdown plus the Parquet it was built from.

``qstreams evidence --contract FILE [--archive DIR] [--since …] -o OUT`` writes into ``OUT``:

* ``evidence.md`` — the narrative (rendered by :mod:`streams.governance.evidence_md`): contract
  versions with their SHA-256 and the diff between consecutive versions (``contracts diff``),
  owners and roles, the monitoring plan (rules, windows, drift settings, response policies and
  their thresholds), event counts per window, and each incident's trace violation → policy →
  action → owner → resolution;
* ``contracts/`` — each version's file as it was; ``monitoring_plan.json``;
* ``events.parquet`` (the archived events of the contract), ``windows.parquet``, ``rules.parquet``,
  ``drift.parquet``, ``confidence.parquet``, ``incidents.parquet`` (:mod:`streams.governance.tables`);
* ``SHA256SUMS`` — the digest of every file above (``sha256sum -c SHA256SUMS`` checks the bundle).

Contract versions come from the ``--contract`` files and, when the file is tracked by git, from
every commit that changed it (``git log --follow``), deduplicated by the contract's SHA-256 and
sorted by semantic version. (:mod:`streams.profiles.evidence` is something else: the data of the
drift events.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from streams.contracts.diff import ContractDiff, diff_contracts
from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract, SchemaObject
from streams.contracts.semver import parse_version
from streams.errors import ContractError, StreamsError
from streams.governance.archive import COLUMNS, read_archive
from streams.governance.tables import (
    batch_table,
    confidence_table,
    drift_table,
    incident_table,
    incidents_open_at,
    rule_table,
    window_table,
)

__all__ = ["ContractVersion", "EvidenceBundle", "contract_versions", "monitoring_plan", "write_evidence"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContractVersion:
    """One version of the contract: where it came from (a file, or ``file@commit``) and its text."""

    contract: Contract
    origin: str
    text: str
    committed_at: str | None = None


@dataclass(frozen=True)
class EvidenceBundle:
    """What :func:`write_evidence` wrote."""

    directory: Path
    markdown: Path
    files: dict[str, str]  # relative path -> sha256
    versions: tuple[ContractVersion, ...]
    incidents: pl.DataFrame
    windows: pl.DataFrame
    #: batch-scope events per batch (no event-time window; ``batches.parquet``)
    batches: pl.DataFrame = field(default_factory=pl.DataFrame)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_versions(path: Path) -> list[ContractVersion]:
    """Every committed version of ``path`` (newest first), when git tracks it; else none."""
    folder = path.resolve().parent
    commits = _git(["log", "--follow", "--format=%H %cI", "--", path.name], folder)
    out = []
    for line in (commits or "").splitlines():
        commit, _, when = line.partition(" ")
        names = _git(["show", "--name-only", "--format=", commit, "--", path.name], folder)  # the name then
        name = (names or "").strip().splitlines()
        text = _git(["show", f"{commit}:{name[0] if name else ''}"], _git_root(folder) or folder)
        if text is None:
            continue
        origin = f"{path.name}@{commit[:12]}"
        try:
            out.append(ContractVersion(parse_contract(text, path=origin), origin, text, when))
        except ContractError as exc:
            log.warning("Skipped %s: it does not load as a contract (%s).", origin, exc)
    return out


def _git_root(folder: Path) -> Path | None:
    root = _git(["rev-parse", "--show-toplevel"], folder)
    return Path(root.strip()) if root else None


def contract_versions(paths: Sequence[Path], *, git_history: bool = True) -> tuple[ContractVersion, ...]:
    """The versions of one contract: the given files plus (``git_history``) their committed versions.

    Deduplicated by SHA-256, oldest semantic version first. :class:`ContractError` when a given file
    does not load or the files are of different contracts.
    """
    found: list[ContractVersion] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ContractError(f"cannot read the contract: {exc}", path=str(path)) from exc
        found.append(ContractVersion(parse_contract(text, path=str(path)), str(path), text))
        if git_history:
            found += _git_versions(path)
    ids = {v.contract.id for v in found}
    if len(ids) > 1:
        raise ContractError(f"The contract files are of different contracts ({', '.join(sorted(ids))}); give the "
                            "versions of one contract.")  # fmt: skip
    unique: dict[str, ContractVersion] = {}
    for v in found:
        unique.setdefault(v.contract.sha256, v)

    def order(v: ContractVersion) -> tuple[Any, ...]:
        parsed = parse_version(v.contract.version)
        return (0, parsed.key(), v.committed_at or "") if parsed else (1, v.contract.version, v.committed_at or "")

    return tuple(sorted(unique.values(), key=order))


def _sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _schema_plan(contract: Contract, schema: SchemaObject, policies: list[dict[str, Any]]) -> dict[str, Any]:
    from streams.profiles.properties import drift_overrides, prediction_spec, reference_path

    spec = schema.stream
    stream = {
        "event_time": (spec.event_time if spec else None) or "Kafka record timestamp",
        "window_ms": spec.window_ms if spec else None,
        "allowed_lateness_ms": spec.allowed_lateness_ms if spec else None,
        "unique_within_ms": spec.unique_within_ms if spec else None,
    }
    rules = [
        {"name": r.name, "column": r.column, "check": r.check, "severity": str(r.severity),
         "threshold": r.threshold.describe(), "dimension": r.dimension, "source": r.source, "line": r.line}
        for r in schema.rules
    ]  # fmt: skip
    drift: dict[str, Any] = {"reference": None, "reference_sha256": None, "fields": {}, "prediction": None}
    problems: list[str] = []
    try:
        reference = reference_path(contract, schema.name)
        prediction = prediction_spec(contract, schema.name)
        drift = {
            "reference": str(reference) if reference else None,
            "reference_sha256": _sha256_file(reference) if reference else None,
            "fields": drift_overrides(contract, schema.name),
            "prediction": prediction.as_dict() if prediction else None,
        }
    except StreamsError as exc:
        problems.append(str(exc))
    return {"name": schema.name, "topic": schema.topic, "stream": stream, "rules": rules, "drift": drift,
            "policies": [p for p in policies if p["schema"] == schema.name], "problems": problems}  # fmt: skip


def monitoring_plan(contract: Contract) -> dict[str, Any]:
    """What is monitored and how, per schema object: rules, windows, drift settings, policies and thresholds.

    Policies that do not lint are not in the plan; their ``file:line`` findings are (``problems``).
    """
    from streams.policies.spec import parse_policies, policy_findings

    findings = policy_findings(contract)
    policies = [] if findings else [
        {**p.as_dict(), "schema": p.schema, "line": p.line} for p in parse_policies(contract)
    ]  # fmt: skip
    return {
        "contract": {"id": contract.id, "version": contract.version, "sha256": contract.sha256,
                     "status": contract.status},
        "schemas": [_schema_plan(contract, s, policies) for s in contract.schemas],
        "problems": [str(f) for f in findings],
    }  # fmt: skip


def members_and_roles(contract: Contract) -> list[dict[str, Any]]:
    """The team members the document lists, with role and dates (current or not)."""
    data = contract.document.data if contract.document is not None else {}
    team = data.get("team")
    members = team.get("members") if isinstance(team, dict) else team if isinstance(team, list) else []
    current = set(contract.ownership.members)
    out = []
    for m in members or []:
        if isinstance(m, dict):
            who = str(m.get("username") or m.get("name") or "")
            out.append({"member": who, "role": m.get("role"), "date_in": m.get("dateIn"),
                        "date_out": m.get("dateOut"), "current": who in current})  # fmt: skip
    return out


def _diffs(versions: Sequence[ContractVersion]) -> list[ContractDiff]:
    return [diff_contracts(a.contract, b.contract) for a, b in itertools.pairwise(versions)]


def write_evidence(
    versions: Sequence[ContractVersion],
    out: Path,
    *,
    archive: Path | None = None,
    since: dt.datetime | None = None,
) -> EvidenceBundle:
    """Write the evidence bundle of the contract (its newest version is ``versions[-1]``) into ``out``."""
    from streams.governance.evidence_md import render_evidence

    if not versions:
        raise ContractError("The evidence bundle needs at least one contract version.")
    current = versions[-1].contract
    events = read_archive(archive, since=since, contract=current.id) if archive else pl.DataFrame(schema=COLUMNS)
    earlier = incidents_open_at(archive, since, current.id) if archive and since is not None else None
    out.mkdir(parents=True, exist_ok=True)
    (out / "contracts").mkdir(exist_ok=True)
    files: dict[str, bytes] = {}
    for i, v in enumerate(versions, 1):
        files[f"contracts/{i:02d}-{v.contract.version}.yaml"] = v.text.encode("utf-8")
    plan = monitoring_plan(current)
    files["monitoring_plan.json"] = orjson.dumps(plan, option=orjson.OPT_INDENT_2)
    tables = {
        "events": events, "windows": window_table(events), "batches": batch_table(events), "rules": rule_table(events),
        "drift": drift_table(events), "confidence": confidence_table(events),
        "incidents": incident_table(events, earlier),
    }  # fmt: skip
    for name, frame in tables.items():
        path = out / f"{name}.parquet"
        frame.write_parquet(path)
        files[f"{name}.parquet"] = path.read_bytes()
    for rel, payload in files.items():
        if not rel.endswith(".parquet"):
            (out / rel).write_bytes(payload)
    digests = {rel: hashlib.sha256(payload).hexdigest() for rel, payload in sorted(files.items())}
    markdown = render_evidence(
        versions=versions, diffs=_diffs(versions), members=members_and_roles(current), plan=plan, tables=tables,
        digests=digests, archive=archive, since=since,
    )  # fmt: skip
    (out / "evidence.md").write_text(markdown, encoding="utf-8")
    digests["evidence.md"] = hashlib.sha256(markdown.encode("utf-8")).hexdigest()
    (out / "SHA256SUMS").write_text("".join(f"{d}  {rel}\n" for rel, d in sorted(digests.items())), encoding="utf-8")
    return EvidenceBundle(out, out / "evidence.md", digests, tuple(versions), tables["incidents"], tables["windows"],
                          tables["batches"])  # fmt: skip
