"""Nested ``logicalType: object`` properties flattened to fields addressed by a dotted path.

A property ``customer`` of ``logicalType: object`` with its own ``properties`` contributes no column
itself: each scalar (or array of scalars) inside it becomes a field named by its path
(``customer.address.zip``), with its own type, options and quality rules, so the engine sees flat
columns. A nested field is **required** only if it and every ancestor object are required (an
optional ``address`` may be absent, whatever its ``zip`` says). A field's classification is the
most protective of its own and its ancestors' (a field inside a ``pii`` object is redacted).

Refused with ``file:line``: a property name containing a dot (paths could not be told apart), two
siblings with the same name (their paths would clash), an object without ``properties``
(nothing in it to check) and what an object property carries that we would not run
(``quality``, ``unique``, ``primaryKey``, ``logicalTypeOptions`` such as ``maxProperties``).
A required object with no required property inside is noted by lint: its absence goes unnoticed.
Arrays of objects are refused by :func:`streams.contracts.types.dtype_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.contracts.source import Path_, SourceContext
from streams.errors import ContractSchemaError

__all__ = ["MAX_DEPTH", "Leaf", "flatten"]

#: Nesting deeper than this is refused (the YAML loader bounds documents at 64 levels anyway).
MAX_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Leaf:
    """One field of the flattened schema object."""

    prop: dict[str, Any]  # the property as declared
    where: Path_  # its place in the document (for file:line)
    path: str  # the dotted path naming the column (``name`` at top level)
    ancestors_required: bool  # True at top level; else every enclosing object is required
    inherited: tuple[Any, ...]  # the classifications declared on enclosing objects, outermost first


def flatten(props: list[Any], where: Path_, ctx: SourceContext) -> list[Leaf]:
    """The leaves of a schema object's ``properties``, in declaration order (depth first)."""
    out: list[Leaf] = []
    _walk(props, where, ctx, "", True, (), out, 0)
    return out


def _walk(
    props: list[Any],
    where: Path_,
    ctx: SourceContext,
    prefix: str,
    required: bool,
    inherited: tuple[Any, ...],
    out: list[Leaf],
    depth: int,
) -> None:
    seen: set[str] = set()
    for i, prop in enumerate(props):
        if not isinstance(prop, dict):
            continue
        pw = (*where, "properties", i)
        name = str(prop.get("name"))
        if "." in name:
            raise ctx.error(
                f"property name {name!r} contains a dot; nested fields are addressed by dotted paths "
                "(customer.address.zip), so a name cannot contain one: rename it, or declare the nesting "
                "with logicalType: object and properties",
                (*pw, "name"),
                ContractSchemaError,
            )
        if name in seen:
            raise ctx.error(
                f"property {prefix}{name!r} is declared twice (two fields would have the path {prefix}{name})",
                (*pw, "name"),
                ContractSchemaError,
            )
        seen.add(name)
        path = prefix + name
        if prop.get("logicalType") != "object":
            out.append(Leaf(prop, pw, path, required, inherited))
            continue
        children = prop.get("properties")
        if not children:
            raise ctx.error(
                f"not supported: logicalType 'object' without `properties` ({path!r}: nothing inside it is "
                "declared, so there is nothing to check; declare its nested properties, or the scalar "
                "logicalType its values have)",
                (*pw, "logicalType"),
            )
        for key in ("quality", "unique", "primaryKey", "logicalTypeOptions"):
            if prop.get(key):
                raise ctx.error(
                    f"not supported: {key} on an object property ({path!r}); nested objects are flattened to "
                    "their fields: declare it on a nested property (or, for quality, on the schema object)",
                    (*pw, key),
                )
        if depth + 1 >= MAX_DEPTH:
            raise ctx.error(f"not supported: objects nested deeper than {MAX_DEPTH} levels ({path!r})", pw)
        own = prop.get("classification")
        before = len(out)
        is_required = required and bool(prop.get("required"))
        _walk(
            children,
            pw,
            ctx,
            path + ".",
            is_required,
            (*inherited, own) if own is not None else inherited,
            out,
            depth + 1,
        )
        if is_required and not any(_required(leaf) for leaf in out[before:]):
            ctx.note(
                f"the required object {path!r} declares no required property: the object itself is no column, "
                "so a record without it passes (mark a nested property required to require the object)",
                (*pw, "required"),
            )


def _required(leaf: Leaf) -> bool:
    return leaf.ancestors_required and bool(leaf.prop.get("required") or leaf.prop.get("primaryKey"))
