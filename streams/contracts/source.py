"""Contract source text: YAML composed with line numbers, and errors located in it.

Everything that reports a problem in a contract goes through :class:`SourceContext`,
so every message names ``file:line``.

A contract is untrusted input. Before anything is built from the YAML, its event stream
(PyYAML's parser is a state machine, not recursive) is scanned once: nesting depth, alias
uses and the size of the document *with aliases expanded* are bounded, so a "billion
laughs" document or a 10,000-deep nesting fails at once with ``file:line`` instead of
exhausting memory or the recursion limit. Timestamps are read as strings (JSON has no
date type, and the ODCS JSON Schema expects strings), as JSON-based validators do.

The text is parsed by libyaml when PyYAML has it (ten times faster than PyYAML's own parser, which was
most of a large contract's load), composed once, and the data constructed from that one node tree; a
document with any problem is read again by PyYAML's parser, so errors keep its words and lines.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import yaml

from streams.errors import ContractError, ContractSyntaxError, UnsupportedRuleError

__all__ = ["Path_", "SourceContext", "SourceDocument", "compose", "line_of"]

Path_ = tuple[str | int, ...]

#: Bounds on a contract document (real ODCS contracts are a few levels deep and a few thousand nodes).
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_NODES = 200_000
MAX_BYTES = 5_000_000


class ContractLoader(yaml.SafeLoader):
    """The safe loader (no tags, no code) with timestamps left as strings and mapping keys as
    their source text (JSON has only string keys); complex and duplicate keys are refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)  # `<<` merge keys
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain string, not a list or mapping", key_node.start_mark
                )
            if key_node.value in mapping:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key_node.value!r} (YAML would keep only the last)", key_node.start_mark
                )
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping


#: digits of an integer literal (Python refuses to read more than 4,300; no contract value needs 100)
MAX_INT_DIGITS = 1000


def _construct_int(loader: Any, node: yaml.ScalarNode) -> int:
    if sum(c.isdigit() for c in node.value) > MAX_INT_DIGITS:
        raise yaml.constructor.ConstructorError(
            None, None, f"an integer of more than {MAX_INT_DIGITS:,} digits; write a smaller number", node.start_mark
        )
    return loader.construct_yaml_int(node)  # type: ignore[no-any-return]


ContractLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
ContractLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@functools.cache
def _fast_loader() -> type[Any] | None:
    """:class:`ContractLoader` on libyaml's parser (about 10x faster than PyYAML's own), or None without libyaml
    (PyYAML's wheels ship it). The same constructor and resolvers, so a document it reads is the same data with
    the same lines. Only documents it reads without any problem are taken from it; every error is reported by
    :class:`ContractLoader`, word for word (libyaml words errors its own way: "... not allowed in this context")."""
    try:
        from yaml.cyaml import CParser  # type: ignore[attr-defined]  # re-exported from yaml._yaml
    except ImportError:
        return None

    class FastContractLoader(CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):  # type: ignore[misc]
        construct_mapping = ContractLoader.construct_mapping
        yaml_implicit_resolvers = ContractLoader.yaml_implicit_resolvers
        yaml_constructors = ContractLoader.yaml_constructors

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    return FastContractLoader


def _syntax_error(exc: yaml.YAMLError, path: str, text: str = "") -> ContractSyntaxError:
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML refuses: no mark, a position in the text
        at = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        return ContractSyntaxError(
            f"malformed YAML: the character U+{ord(char):04X} is not allowed in YAML text (a control character "
            "or an unpaired surrogate); remove it or write it as an escape in a double-quoted string",
            path=path,
            line=at,
        )
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    return ContractSyntaxError(f"malformed YAML: {problem}", path=path, line=line)


def check_bounds(text: str, path: str, loader: type[Any] = ContractLoader) -> None:
    """Refuse documents too deep, with too many aliases, or too large once aliases are expanded."""
    if len(text) > MAX_BYTES:
        raise ContractSyntaxError(
            f"the contract is {len(text):,} characters long; contracts are limited to {MAX_BYTES:,}", path=path, line=1
        )
    sizes: dict[str, int] = {}  # expanded node count of each anchored node
    stack: list[tuple[str | None, int]] = [(None, 0)]  # (anchor, nodes so far) per open collection
    open_anchors: list[str | None] = []  # anchors of the open collections: an alias to one is a cycle
    aliases = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            line = event.start_mark.line + 1 if event.start_mark is not None else None
            if isinstance(event, yaml.CollectionStartEvent):
                if len(stack) > MAX_DEPTH:
                    raise ContractSyntaxError(
                        f"the YAML is nested more than {MAX_DEPTH} levels deep; contracts are limited to {MAX_DEPTH}",
                        path=path,
                        line=line,
                    )
                stack.append((event.anchor, 0))
                open_anchors.append(event.anchor)
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                open_anchors.pop()
                anchor, count = stack.pop()
                added = count + 1
                if anchor is not None:
                    sizes[anchor] = added
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise ContractSyntaxError(
                        f"the YAML uses more than {MAX_ALIASES} aliases (*name); contracts are limited to "
                        f"{MAX_ALIASES} (a document that expands aliases exponentially is refused)",
                        path=path,
                        line=line,
                    )
                if event.anchor in open_anchors:
                    raise ContractSyntaxError(
                        f"the alias *{event.anchor} is inside the collection &{event.anchor} it refers to, which makes "
                        "an infinitely deep (recursive) structure; a contract must be a tree",
                        path=path,
                        line=line,
                    )
                added = sizes.get(str(event.anchor), 1)
            elif isinstance(event, yaml.ScalarEvent):
                added = 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            else:
                continue
            anchor, count = stack[-1]
            stack[-1] = (anchor, count + added)
            if count + added > MAX_NODES:
                raise ContractSyntaxError(
                    f"the YAML expands to more than {MAX_NODES:,} nodes (aliases included); contracts are limited "
                    f"to {MAX_NODES:,} (an alias bomb, or a far too large document)",
                    path=path,
                    line=line,
                )
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, path, text) from None


def compose(text: str, path: str) -> tuple[Any, dict[Path_, int]]:
    """The document's data (JSON-like) and the line of every path in it; ``ContractSyntaxError`` (file:line)."""
    fast = _fast_loader()
    # libyaml skips a byte order mark at the start of every line (PyYAML only at the text's start: after a key
    # with no value, the line it begins nests under that key, other data without an error) and accepts tabs
    # PyYAML refuses (`a: 1\t`, `a:\t1`): such texts are read by PyYAML, so no data and no error changes
    if (
        fast is not None
        and "\t" not in text
        and text.find("\ufeff", 1) < 0
        and not yaml.reader.Reader.NON_PRINTABLE.search(text)
    ):
        try:
            return _compose(text, path, fast)
        except (ContractSyntaxError, yaml.YAMLError):
            pass  # reported below by PyYAML's parser, in the words and at the line it always used
    return _compose(text, path, ContractLoader)


def _compose(text: str, path: str, loader_cls: type[Any]) -> tuple[Any, dict[Path_, int]]:
    check_bounds(text, path, loader_cls)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, path, text) from None
    else:
        if node is None:
            raise ContractSyntaxError("the file is empty; expected an ODCS contract document", path=path, line=1)
        lines: dict[Path_, int] = {}
        _index(node, (), lines)
        try:  # built from the node composed above (no second parse): a SafeLoader's constructor, no tags, no code
            data = loader.construct_document(node)
        except yaml.YAMLError as exc:  # e.g. a bad tag or key only the constructor sees
            raise _syntax_error(exc, path, text) from None
        return data, lines
    finally:
        loader.dispose()


def _index(node: yaml.Node, where: Path_, lines: dict[Path_, int]) -> None:
    lines[where] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue  # refused when the document is constructed
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
    """Where a contract's parts are (line numbers), and the non-fatal notes found while compiling it."""

    def __init__(self, lines: dict[Path_, int], path: str) -> None:
        self.lines = lines
        self.path = path
        self.notes: list[tuple[int | None, str]] = []

    def note(self, message: str, where: Path_) -> None:
        """Record something the worker does not enforce (lint prints it; it does not fail)."""
        self.notes.append((line_of(self.lines, where), message))

    def error(self, message: str, where: Path_, cls: type[ContractError] = UnsupportedRuleError) -> ContractError:
        field = ".".join(str(p) for p in where)
        return cls(message, path=self.path, line=line_of(self.lines, where), field=field)

    def line(self, where: Path_) -> int | None:
        return line_of(self.lines, where)


@dataclass(frozen=True, eq=False)
class SourceDocument:
    """A composed contract document kept beside the compiled contract: its data (JSON-like, as the
    ODCS schema checked it) and the line of every path in it, so that later checks (ownership,
    response policies) report ``file:line`` as the loader does."""

    path: str
    data: dict[str, Any]
    lines: dict[Path_, int]
    #: the YAML text it was parsed from (None when not kept): stream time stores it so that a later version of
    #: the contract can have the windows this one judged finalized by it (``docs/stream-time.md``)
    text: str | None = None

    def line(self, where: Path_) -> int | None:
        return line_of(self.lines, where)

    def error(self, message: str, where: Path_, cls: type[ContractError] = ContractError) -> ContractError:
        return cls(message, path=self.path, line=self.line(where), field=".".join(str(p) for p in where))
