"""``contracts diff`` names ``file:line`` in the new contract (red team 9): a stream-time setting
(``qstreams.uniqueWithin``, ``qstreams.window``, ...) removed in the new version was reported at its line in the *old*
file, which the CLI prints after the new file's path: ``new.yaml:12`` in a 10-line file. It is now the schema
object's line in the new file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.diff import ChangeKind, diff_contracts
from streams.contracts.loader import parse_contract

OLD = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:lines
version: 1.0.0
status: active
schema:
  - name: orders
    properties:
      - {name: a, logicalType: string, unique: true}
      - {name: ts, logicalType: timestamp}
    customProperties:
      - {property: qstreams.uniqueWithin, value: 1h}
      - {property: qstreams.window, value: 5m}
"""
NEW = "".join(OLD.splitlines(keepends=True)[:10]).replace("1.0.0", "2.0.0")  # the settings removed


def test_a_removed_stream_setting_is_reported_at_a_line_of_the_new_file(tmp_path: Path) -> None:
    diff = diff_contracts(parse_contract(OLD, "old.yaml"), parse_contract(NEW, "new.yaml"))
    kinds = {c.kind: c for c in diff.changes}
    assert set(kinds) == {ChangeKind.UNIQUE_HORIZON_CHANGED, ChangeKind.STREAM_TIME_CHANGED}
    assert {c.line for c in diff.changes} == {7}  # `- name: orders` in the new file
    (tmp_path / "old.yaml").write_text(OLD)
    (tmp_path / "new.yaml").write_text(NEW)
    out = CliRunner().invoke(app, ["contracts", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml")])
    assert out.exit_code == 0, out.output
    assert f"{tmp_path / 'new.yaml'}:7" in out.output and "new.yaml:12" not in out.output


POLICIES = """\
    customProperties:
      - property: qstreams.policies
        value:
          - {name: a, when: {metric: window.failed}}
          - {name: b, when: {metric: lag.records, above: 10}}
"""


def test_a_removed_policy_is_printed_at_its_line_in_the_old_file(tmp_path: Path) -> None:
    old = "".join(OLD.splitlines(keepends=True)[:10]) + POLICIES  # policy b at line 15 of the old file
    new = old.replace("1.0.0", "1.0.1").replace("          - {name: b, when: {metric: lag.records, above: 10}}\n", "")
    (tmp_path / "old.yaml").write_text(old)
    (tmp_path / "new.yaml").write_text(new)
    out = CliRunner().invoke(app, ["contracts", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml")])
    assert out.exit_code == 0, out.output
    (row,) = [line for line in out.output.splitlines() if line.startswith("policy_removed")]
    assert row.endswith(f"{tmp_path / 'old.yaml'}:15"), row  # the new file has 14 lines
