"""Lint catches contracts that load but cannot work: bounds no value can satisfy (every row would fail) and a
``version`` that is not semantic versioning (``contracts diff`` would fail every PR, evidence cannot order it).
Before, both linted clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.lint import lint_file

DOC = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:orders
version: {version}
status: draft
schema:
  - name: orders
    properties:
      - name: x
        logicalType: {logical}
        logicalTypeOptions: {options}
"""


def problems(tmp_path: Path, version: str = "1.0.0", logical: str = "number", options: str = "{}") -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(DOC.format(version=version, logical=logical, options=options))
    return [str(f) for f in lint_file(path) if not f.note]


@pytest.mark.parametrize(
    ("logical", "options"),
    [
        ("number", "{minimum: 5, maximum: 1}"),
        ("number", "{minimum: 5, exclusiveMaximum: 5}"),
        ("integer", "{exclusiveMinimum: 3, maximum: 3}"),
        ("string", "{minLength: 10, maxLength: 2}"),
        ("date", "{minimum: '2024-06-01', maximum: '2024-01-01'}"),
    ],
)
def test_bounds_no_value_can_satisfy_are_an_error_with_the_line(tmp_path: Path, logical: str, options: str) -> None:
    found = problems(tmp_path, logical=logical, options=options)
    assert len(found) == 1, found
    assert found[0].startswith(f"{tmp_path / 'c.yaml'}:11:") and "no value can satisfy" in found[0]


@pytest.mark.parametrize(
    "options", ["{minimum: 1, maximum: 1}", "{minimum: 0, maximum: 10}", "{minLength: 2, maxLength: 2}"]
)
def test_satisfiable_bounds_lint_clean(tmp_path: Path, options: str) -> None:
    logical = "string" if "Length" in options else "number"
    assert problems(tmp_path, logical=logical, options=options) == []


def test_a_version_that_is_not_semver_is_an_error_with_the_line(tmp_path: Path) -> None:
    found = problems(tmp_path, version="banana")
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'c.yaml'}:4:") and "semantic version" in found[0]
    assert problems(tmp_path, version="v2.1.0-rc.1") == []
