"""The evidence bundle: versions with hashes and diffs, owners, plan, window counts, incident traces, digests."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
from pathlib import Path

import orjson
import polars as pl
import pytest
from cloudevents.core.v1.event import CloudEvent
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.loader import parse_contract
from streams.governance.archive import Archive
from streams.governance.evidence import contract_versions, write_evidence
from tests.unit.policies.conftest import CONTRACT, POLICIES

from .scenario import T0, scenario
from .test_archive import NOW, records

V110 = CONTRACT.replace("version: 1.0.0", "version: 1.1.0").replace("maximum: 1000", "maximum: 500")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(contract 1.0.0, contract 1.1.0, archive of the scenario judged against 1.0.0)."""
    old, new = tmp_path / "payments-1.0.yaml", tmp_path / "payments.yaml"
    old.write_text(CONTRACT)
    new.write_text(V110)
    contract = parse_contract(CONTRACT, path=str(old))
    attributes = {"specversion": "1.0", "id": "act-1", "type": "io.qualitystreams.policy.action.v1",
                  "source": "urn:qstreams:x", "time": T0 + dt.timedelta(minutes=5, seconds=3),
                  "contractid": contract.id, "datacontenttype": "application/json"}  # fmt: skip
    # an action event of the policy agent (a type this layer does not know yet) naming the page incident
    action = CloudEvent(attributes, {"incident": {"id": "e3666bb416a80ab4a6050d6b8c61d7b0"}, "outcome": "delivered"})
    with Archive(tmp_path / "archive") as archive:
        archive.ingest(records([*scenario(contract), action]), now=NOW)
    return old, new, tmp_path / "archive"


def test_bundle_traces_every_incident_from_violation_to_resolution(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    old, new, archive = setup
    versions = contract_versions([new, old], git_history=False)
    assert [v.contract.version for v in versions] == ["1.0.0", "1.1.0"]
    bundle = write_evidence(versions, tmp_path / "out", archive=archive)
    incidents = pl.read_parquet(tmp_path / "out" / "incidents.parquet")
    assert incidents.select("policy", "status").rows() == [
        ("window-failing", "resolved"), ("window-failing", "resolved"), ("amount-out-of-range", "resolved"),
        ("amount-drift", "open"),
    ]  # fmt: skip
    page = incidents.filter(pl.col("policy") == "amount-out-of-range").row(0, named=True)
    assert page["violations"].splitlines() == [
        "2026-12-01T12:03:00Z: amount:maximum failed, 20 record(s) (2.00%)",
        "2026-12-01T12:04:00Z: amount:maximum failed, 30 record(s) (3.00%)",
    ]
    assert (page["action"], page["owners"], page["support_channel"]) == ("page", "ana", "#payments-oncall")
    assert page["actions_taken"] == "io.qualitystreams.policy.action.v1@2026-12-01T12:05:03Z"
    assert (page["resolved_how"], page["duration_seconds"]) == ("auto", 360.0)
    drift = incidents.filter(pl.col("policy") == "amount-drift").row(0, named=True)
    assert (
        drift["violations"].splitlines()[0] == "2026-12-01T12:08:00Z: amount psi = 0.25 (threshold 0.2, verdict drift)"
    )
    md = bundle.markdown.read_text()
    for heading in ("## 1. Contract versions", "## 2. Owners and roles", "## 3. Monitoring plan",
                    "## 4. Events per window", "## 5. Incidents", "## 6. Files of this bundle"):  # fmt: skip
        assert heading in md
    assert (
        f"| 1.0.0 | active | `{versions[0].contract.sha256}` |" in md and "| 63 |" in md
    )  # the action event names no version
    assert "#### 1.0.0 → 1.1.0: FAIL" in md and "| range_tightened | payments.amount |" in md
    assert "| amount-out-of-range | rule.failure_rate[amount:maximum] above 0.01 | 2 | critical | page |" in md
    assert "5. **Resolution**: **still open**" in md
    windows = pl.read_parquet(tmp_path / "out" / "windows.parquet")
    assert windows.height == 14 and windows["summaries"].to_list() == [1] * 14
    assert windows.filter(~pl.col("passed"))["window_start"].dt.minute().to_list() == [1, 3, 4, 5, 6, 7, 8, 9, 10]
    sums = (tmp_path / "out" / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 11  # batches.parquet too
    for line in sums:
        digest, name = line.split("  ")
        assert hashlib.sha256((tmp_path / "out" / name).read_bytes()).hexdigest() == digest, name
    plan = orjson.loads((tmp_path / "out" / "monitoring_plan.json").read_bytes())
    assert [p["name"] for p in plan["schemas"][0]["policies"]] == [
        "amount-out-of-range",
        "window-failing",
        "amount-drift",
    ]


def test_since_limits_the_events(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    old, _, archive = setup
    bundle = write_evidence(contract_versions([old], git_history=False), tmp_path / "out", archive=archive,
                            since=T0 + dt.timedelta(minutes=10, seconds=30))  # fmt: skip
    # the incidents open at 12:10:30 (opened before, resolved after) belong to the period (red team 8)
    assert bundle.incidents["policy"].to_list() == ["window-failing", "amount-out-of-range", "amount-drift"]
    assert bundle.incidents.filter(pl.col("opened_at") >= T0 + dt.timedelta(minutes=10, seconds=30)).height == 1
    assert "_one version: nothing to compare_" in bundle.markdown.read_text()


def test_versions_come_from_git_history(tmp_path: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_CONFIG_GLOBAL": "/dev/null"}  # fmt: skip

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, env=env, check=True, capture_output=True)

    path = tmp_path / "payments.yaml"
    git("init", "-q")
    for text in (CONTRACT, V110):
        path.write_text(text)
        git("add", "payments.yaml")
        git("commit", "-qm", "contract")
    path.write_text(V110.replace("version: 1.1.0", "version: 2.0.0"))  # the working copy, not committed
    versions = contract_versions([path])
    assert [v.contract.version for v in versions] == ["1.0.0", "1.1.0", "2.0.0"]
    assert versions[0].origin.startswith("payments.yaml@") and versions[0].committed_at
    assert versions[2].origin == str(path)


def test_a_plan_with_a_broken_policy_lists_the_finding(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        CONTRACT.replace(POLICIES, "          - {name: x, when: {metric: rule.failure_rate, rule: nope, above: 0.1}}\n")
    )
    bundle = write_evidence(contract_versions([path], git_history=False), tmp_path / "out")
    md = bundle.markdown.read_text()
    assert "- **Problem:** " in md and "nope" in md and f"{path}:" in md
    assert "_no archived events in the period_" in md and "_no incident in the period_" in md


def test_cli(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    old, new, archive = setup
    runner = CliRunner()
    out = tmp_path / "bundle"
    args = ["evidence", "-c", str(new), "-c", str(old), "--archive", str(archive), "-o", str(out), "--no-git-history"]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert (
        "2 contract version(s), 14 event-time window(s), 0 batch(es) (not windows), 4 incident(s) (1 open)"
        in done.output
    )
    assert (out / "evidence.md").exists()
    bad = runner.invoke(app, [*args, "--since", "yesterday-ish"])
    assert bad.exit_code == 2 and "neither a date" in bad.output
    missing = runner.invoke(app, ["evidence", "-c", str(tmp_path / "nope.yaml"), "-o", str(out)])
    assert missing.exit_code == 2 and "cannot read the contract" in missing.output
