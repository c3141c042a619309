"""The fast paths of loading a contract read the same documents and report the same errors as the slow ones.

YAML is read by libyaml's parser when PyYAML has it (about ten times faster than PyYAML's own); a document
with any problem is read again by PyYAML's parser, whose words and lines the errors have always had.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import streams
from streams.contracts import source
from streams.contracts.loader import parse_contract
from streams.errors import ContractSyntaxError

REPO = Path(streams.__file__).parent.parent
FAST = source._fast_loader()
needs_libyaml = pytest.mark.skipif(FAST is None, reason="PyYAML built without libyaml")

TRICKY = {
    "anchors and merge keys": "base: &b {x: 1, y: [a, b]}\nuse:\n  <<: *b\n  z: *b\n",
    "block scalars": "a: |\n  line 1\n   line 2\nb: >-\n  folded\n  text\n\nc: last\n",
    "quoting and escapes": "a: 'it''s'\nb: \"tab\\tnew\\nline \\u00e9\"\nc: \"#not a comment\" # a comment\n",
    "implicit types": "a: 1e3\nb: .inf\nc: 0o17\nd: yes\ne: ~\nf: 2024-01-01\ng: 2024-01-01T00:00:00Z\nh: 0x1F\n",
    "flow collections": "a: [1, {b: 2, c: [3, 4]}, 'x']\nd: {}\ne: []\n",
    "byte order mark": "\ufeffa: 1\nb: [x]\n",
    "unicode": "name: caf\u00e9 \u2603\nlist:\n- \u00fc\n- \U0001f600\n",
    "explicit document": "%YAML 1.1\n---\na: 1\n...\n",
    "multi-line plain scalars": "a: one\n  two\n  three\nb:\n  - x\n    y\n",
}


def _both(text: str) -> list[Any]:
    assert FAST is not None
    return [source._compose(text, "c.yaml", loader) for loader in (FAST, source.ContractLoader)]


@needs_libyaml
@pytest.mark.parametrize("name", sorted(TRICKY))
def test_libyaml_reads_the_same_data_and_lines_as_pyyaml(name: str) -> None:
    fast, slow = _both(TRICKY[name])
    assert fast == slow
    assert fast[1]  # lines were indexed


@needs_libyaml
@pytest.mark.parametrize("path", sorted(p.name for p in (REPO / "contracts").glob("*.yaml")))
def test_libyaml_reads_the_shipped_contracts_as_pyyaml(path: str) -> None:
    fast, slow = _both((REPO / "contracts" / path).read_text("utf-8"))
    assert fast == slow
    assert len(fast[1]) > 50


@needs_libyaml
def test_a_valid_contract_is_read_by_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[type[Any]] = []
    compose = source._compose

    def spy(text: str, path: str, loader_cls: type[Any]) -> Any:
        used.append(loader_cls)
        return compose(text, path, loader_cls)

    monkeypatch.setattr(source, "_compose", spy)
    parse_contract((REPO / "contracts" / "card_transactions.odcs.yaml").read_text("utf-8"), "c.yaml")
    assert used == [FAST]


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        # libyaml: "mapping values are not allowed in this context"
        ("a: b: c\n", "malformed YAML: mapping values are not allowed here", 1),
        # libyaml: "did not find expected ',' or ']'"
        ("a: [1, 2\n", "malformed YAML: expected ',' or ']', but got '<stream end>'", 2),
        # libyaml: "found character that cannot start any token"
        ("a:\n\t- 1\n", "malformed YAML: found character '\\t' that cannot start any token", 2),
        # libyaml: "found undefined alias"
        ("a: *nope\n", "malformed YAML: found undefined alias 'nope'", 1),
        # libyaml: line 2
        ("{a: 1", "malformed YAML: expected ',' or '}', but got '<stream end>'", 1),
        ("a: 1\na: 2\n", "malformed YAML: duplicate key 'a' (YAML would keep only the last)", 2),
        # never given to libyaml (PyYAML's reader refuses it; libyaml would not say the same)
        (
            "a: \x07\n",  # red team 11: the reader's error has no mark; the line is counted to its position
            "malformed YAML: the character U+0007 is not allowed in YAML text (a control character or an unpaired "
            "surrogate); remove it or write it as an escape in a double-quoted string",
            1,
        ),
        ("", "the file is empty; expected an ODCS contract document", 1),
    ],
)
def test_malformed_yaml_is_reported_in_pyyaml_words_at_its_line(text: str, message: str, line: int | None) -> None:
    with pytest.raises(ContractSyntaxError) as info:
        source.compose(text, "c.yaml")
    assert (info.value.message, info.value.line, info.value.path) == (message, line, "c.yaml")


def test_two_documents_composed_in_a_row_keep_their_own_data_and_lines() -> None:
    first, first_lines = source.compose("a: 1\nb:\n  c: 2\n", "one.yaml")
    second, second_lines = source.compose("\n\nb: x\n", "two.yaml")
    assert (first, second) == ({"a": 1, "b": {"c": 2}}, {"b": "x"})
    assert (first_lines[("b", "c")], second_lines[("b",)]) == (3, 3)


# --- the JSON Schema check is done once per text and path ------------------------------------------------------

GOOD = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:speed
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - {name: a, logicalType: integer}
"""


def _schema_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the JSON Schema is run for, from now on."""
    from streams.contracts import odcs_schema

    checked: list[str] = []
    check = odcs_schema.schema_findings

    def spy(data: Any, lines: Any, path: str) -> Any:
        checked.append(path)
        return check(data, lines, path)

    monkeypatch.setattr(odcs_schema, "schema_findings", spy)
    return checked


def test_lint_then_load_of_one_file_checks_the_json_schema_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.contracts.loader import lint_contract, load_contract

    checked = _schema_checks(monkeypatch)
    path = tmp_path / "c.yaml"
    path.write_text(GOOD)
    assert lint_contract(path) == []
    assert load_contract(path).schemas[0].fields[0].name == "a"
    assert checked == [str(path)]


def test_documents_checked_in_a_row_get_their_own_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.contracts.loader import lint_contract, load_contract
    from streams.errors import ContractSchemaError

    checked = _schema_checks(monkeypatch)
    path = tmp_path / "c.yaml"
    path.write_text(GOOD.replace("logicalType: integer", "logicalType: integr"))
    first = lint_contract(path)
    path.write_text(GOOD.replace("name: t\n", "name: t\n    descripton: x\n"))  # the same file, edited
    second = lint_contract(path)
    other = tmp_path / "d.yaml"
    other.write_text(GOOD.replace("logicalType: integer", "logicalType: integr"))  # the first text, elsewhere
    third = lint_contract(other)
    assert [(f.line, f.message[:40]) for f in first] == [(9, "schema.0.properties.0.logicalType: 'inte")]
    assert [(f.line, f.message[:40]) for f in second] == [(8, "unknown field 'descripton' in schema.0 (")]
    assert [(f.path, f.line) for f in third] == [(str(other), 9)]
    with pytest.raises(ContractSchemaError) as info:
        load_contract(path)
    assert (info.value.path, info.value.line, info.value.message) == (str(path), 8, second[0].message)
    path.write_text(GOOD)
    assert load_contract(path).id == "urn:test:speed"
    assert checked == [str(path), str(path), str(other), str(path)]


def test_the_cli_and_the_loader_import_no_sql_parser_until_a_contract_has_sql_rules() -> None:
    """``qstreams contracts lint`` and ``validate`` start without sqlglot (a sixth of their import time); a
    contract with a SQL rule imports it when it is loaded."""
    import subprocess
    import sys

    code = (
        "import sys\nimport streams.cli.main\nfrom streams.contracts.loader import parse_contract\n"
        "before = 'sqlglot' in sys.modules\n"
        f"parse_contract({GOOD!r})\nplain = 'sqlglot' in sys.modules\n"
        f"parse_contract({GOOD!r} + '    quality: [{{type: sql, query: \"SELECT COUNT(*) FROM t\", mustBe: 0}}]\\n')\n"
        "print(before, plain, 'sqlglot' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=REPO)
    assert out.stdout.split() == ["False", "False", "True"], out.stderr
