"""A CSV file separated by something other than its extension's delimiter is refused naming the delimiter.

Before, ``qstreams validate`` read a ``;``-separated ``.csv`` as one column named ``id;amount;name``: no property
was found, so every row failed ``dtype`` and ``not_nullable`` of every required property, with no hint why.
Now a header that names more of the contract's properties when split on ``;``, a tab or ``|`` is a
``file:1`` error naming that delimiter (the file is never read with a guessed one), and ``--delimiter``
reads it as the user says.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:delimiter
version: 1.0.0
status: draft
schema:
  - name: t
    properties:
      - {name: id, logicalType: integer, required: true}
      - {name: amount, logicalType: number}
      - {name: name, logicalType: string}
"""


def _run(tmp_path: Path, text: str, *extra: str) -> tuple[int, str]:
    (tmp_path / "c.yaml").write_text(CONTRACT)
    (tmp_path / "d.csv").write_text(text)
    result = CliRunner().invoke(
        app, ["validate", str(tmp_path / "d.csv"), "-c", str(tmp_path / "c.yaml"), "--format", "json", *extra]
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("sep", "named", "flag"),
    [(";", "a semicolon (';')", "';'"), ("\t", "a tab ('\\t')", "tab"), ("|", "a vertical bar", "'|'")],
)
def test_a_csv_with_another_delimiter_is_refused_naming_it(tmp_path: Path, sep: str, named: str, flag: str) -> None:
    code, out = _run(tmp_path, sep.join(["id", "amount", "name"]) + "\n" + sep.join(["1", "2.5", "a"]) + "\n")
    assert code == 2, out
    assert "d.csv:1: the header split on a comma (',') names 0 of the 3 properties" in out
    assert f"split on {named}" in out and f"pass --delimiter {flag}" in out


@pytest.mark.parametrize(("sep", "flag"), [(";", ";"), ("\t", "tab")])
def test_the_delimiter_option_reads_the_file(tmp_path: Path, sep: str, flag: str) -> None:
    code, out = _run(
        tmp_path, sep.join(["id", "amount", "name"]) + "\n1" + sep + "2,5" + sep + "a\n", "--delimiter", flag
    )
    assert code == 1, out  # '2,5' is no number: the row is judged (not refused as a file)
    report = json.loads(out)
    assert (report["rows"], report["invalid_rows"]) == (1, 1)
    assert [c["failure_case"] for c in report["failure_cases"]] == ["2,5"]


def test_a_comma_csv_missing_a_property_is_judged_not_refused(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "id,name;x\n1,a\n")
    assert code == 0, out  # amount is optional and absent; 'name;x' is no property on any split
    assert json.loads(out)["rows"] == 1
