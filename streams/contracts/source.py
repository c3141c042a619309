"""Contract source text: YAML composed with line numbers, and errors located in it.

Everything that reports a problem in a contract goes through :class:`SourceContext`,
so every message names ``file:line``.
"""

from __future__ import annotations

from typing import Any

import yaml

from streams.errors import ContractError, ContractSyntaxError, UnsupportedRuleError

__all__ = ["Path_", "SourceContext", "compose", "line_of"]

Path_ = tuple[str | int, ...]


def compose(text: str, path: str) -> tuple[Any, dict[Path_, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContractSyntaxError(f"malformed YAML: {problem}", path=path, line=line) from None
    if node is None:
        raise ContractSyntaxError("the file is empty; expected an ODCS contract document", path=path, line=1)
    lines: dict[Path_, int] = {}
    _index(node, (), lines)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # e.g. a bad tag only the constructor sees
        raise ContractSyntaxError(f"malformed YAML: {exc}", path=path) from None
    return data, lines


def _index(node: yaml.Node, where: Path_, lines: dict[Path_, int]) -> None:
    lines[where] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            lines[(*where, k)] = key.start_mark.line + 1
            _index(value, (*where, k), lines)
            lines[(*where, k)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*where, i), lines)


def line_of(lines: dict[Path_, int], where: Path_) -> int | None:
    for n in range(len(where), -1, -1):
        if where[:n] in lines:
            return lines[where[:n]]
    return None


class SourceContext:
    def __init__(self, lines: dict[Path_, int], path: str) -> None:
        self.lines = lines
        self.path = path

    def error(self, message: str, where: Path_, cls: type[ContractError] = UnsupportedRuleError) -> ContractError:
        field = ".".join(str(p) for p in where)
        return cls(message, path=self.path, line=line_of(self.lines, where), field=field)

    def line(self, where: Path_) -> int | None:
        return line_of(self.lines, where)
