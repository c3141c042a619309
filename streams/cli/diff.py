"""``qstreams contracts diff OLD NEW``: changes between two contract versions, and a semver check for CI.

Exit codes: ``0`` the version step covers the changes, ``1`` it does not (a breaking change
under a minor or patch bump, a changed contract whose version did not go up, a version that
is not semver), ``2`` a contract cannot be read or loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from streams.contracts.diff import ContractDiff

__all__ = ["contracts_diff", "render_diff"]

EXIT_OK, EXIT_VIOLATION, EXIT_UNREADABLE = 0, 1, 2


def contracts_diff(
    old: Annotated[Path, typer.Argument(help="The contract as it was (e.g. from the main branch).")],
    new: Annotated[Path, typer.Argument(help="The contract as it is now.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
) -> None:
    """Classify every change between two versions of a contract as breaking or not, for producers and for
    consumers, and check the version bump. Exit 0 if the bump covers the changes, 1 if not, 2 if a contract
    cannot be loaded."""
    from streams.contracts.diff import diff_contracts
    from streams.contracts.loader import load_contract
    from streams.errors import ContractError

    loaded = []
    for path in (old, new):
        try:
            loaded.append(load_contract(path))
        except ContractError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_UNREADABLE) from None
    result = diff_contracts(loaded[0], loaded[1])
    check = result.semver()
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        typer.echo(render_diff(result))
    raise typer.Exit(EXIT_OK if check.ok else EXIT_VIOLATION)


def render_diff(result: ContractDiff) -> str:
    """The diff as a plain-text table, then the semver verdict."""
    old, new = result.old, result.new
    lines = [f"{old.id}: {old.version} ({old.path}) → {new.version} ({new.path})"]
    rows = [
        (
            str(c.kind),
            c.where,
            _short(c.old),
            _short(c.new),
            "BREAKING" if c.breaks_producers else "-",
            "BREAKING" if c.breaks_consumers else "-",
            str(c.bump),
            f"{new.path if c.line and c.kind.value not in _REMOVED else old.path}:{c.line}" if c.line else "",
        )
        for c in result.changes
    ]
    if rows:
        header = ("change", "where", "old", "new", "producers", "consumers", "bump", "at")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    else:
        lines.append("no changes to schema objects, fields, rules, status or owners")
    check = result.semver()
    lines.append(f"{'OK' if check.ok else 'FAIL'}: {check.message}")
    return "\n".join(lines)


_REMOVED = frozenset({"schema_removed", "field_removed", "rule_removed", "policy_removed"})  # lines of the old file


def _short(value: object, width: int = 40) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"
