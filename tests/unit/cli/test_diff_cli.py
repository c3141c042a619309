"""`qstreams contracts diff OLD NEW`: exit codes for CI (0 ok, 1 semver violation, 2 unreadable), table and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from streams.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
FEATURES = ROOT / "contracts" / "card_transactions.odcs.yaml"
runner = CliRunner()


def _variant(tmp_path: Path, name: str, version: str, *edits: tuple[str, str]) -> Path:
    text = FEATURES.read_text().replace("version: 1.4.0", f"version: {version}", 1)
    for before, after in edits:
        assert before in text
        text = text.replace(before, after, 1)
    path = tmp_path / name
    path.write_text(text)
    return path


def test_breaking_change_under_a_minor_bump_exits_1_with_the_line(tmp_path: Path) -> None:
    new = _variant(tmp_path, "new.yaml", "1.5.0", ("maximum: 50000", "maximum: 10000"))
    res = runner.invoke(app, ["contracts", "diff", str(FEATURES), str(new)])
    assert res.exit_code == 1, res.output
    (row,) = [ln for ln in res.stdout.splitlines() if ln.startswith("range_tightened")]
    assert "card_transactions.amount" in row and "BREAKING" in row and f"{new}:" in row
    lineno = int(row.rsplit(":", 1)[1])
    assert "maximum: 10000" in new.read_text().splitlines()[lineno - 1]
    assert "FAIL: 1.4.0 → 1.5.0 is a minor bump, but the changes require a major bump" in res.stdout


def test_the_same_change_under_a_major_bump_exits_0_and_json_is_parseable(tmp_path: Path) -> None:
    new = _variant(tmp_path, "new.yaml", "2.0.0", ("maximum: 50000", "maximum: 10000"))
    res = runner.invoke(app, ["contracts", "diff", str(FEATURES), str(new), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["semver"]["ok"] is True and out["semver"]["required"] == "major"
    assert out["breaking_for_producers"] is True and out["breaking_for_consumers"] is False
    assert [c["kind"] for c in out["changes"]] == ["range_tightened"]


def test_identical_contracts_exit_0(tmp_path: Path) -> None:
    res = runner.invoke(app, ["contracts", "diff", str(FEATURES), str(FEATURES)])
    assert res.exit_code == 0, res.output
    assert "no changes" in res.stdout and "OK:" in res.stdout


def test_unreadable_contract_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v3.1.0\nkind: [unclosed\n")
    res = runner.invoke(app, ["contracts", "diff", str(FEATURES), str(broken)])
    assert res.exit_code == 2
    assert f"{broken}:" in res.output
    missing = runner.invoke(app, ["contracts", "diff", str(tmp_path / "nope.yaml"), str(FEATURES)])
    assert missing.exit_code == 2
