"""``qstreams profile``: build and show reference profiles.

Registered in :mod:`streams.cli.main` with::

    from streams.cli.profile import profile_app
    app.add_typer(profile_app, name="profile")

Exit codes as the rest of the CLI: 0 success, 1 drift found (``profile drift``), 2 usage errors (a
contract that cannot be loaded, an unreadable data file, a corrupt reference or one of another
contract or version).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer

from streams.errors import ContractError, DataFormatError, ProfileError

profile_app = typer.Typer(help="Reference profiles for drift monitoring.", no_args_is_help=True)

EXIT_USAGE = 2


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


@profile_app.command("build")
def build(
    data: Annotated[list[Path], typer.Argument(help="Parquet, NDJSON / JSON Lines or CSV files.")],
    contract: Annotated[Path, typer.Option("--contract", "-c", help="ODCS contract file.")],
    schema: Annotated[str | None, typer.Option(help="Schema object name (or topic) when there are several.")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Profile file to write; default: the contract's qstreams.reference."),
    ] = None,
    bins: Annotated[int, typer.Option(min=2, max=1000, help="Quantile bins per numeric field.")] = 100,
    batch_rows: Annotated[int, typer.Option(min=1, help="Rows read per batch.")] = 100_000,
) -> None:
    """Profile reference data for a contract's schema object, streaming it in batches."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from streams.contracts.loader import load_contract
    from streams.profiles.properties import reference_path
    from streams.profiles.reference import build_reference, save_reference

    try:
        loaded = load_contract(contract)
        obj = loaded.schema(schema)
        target = output or reference_path(loaded, obj.name)
    except ContractError as exc:
        raise _fail(str(exc)) from None
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    if target is None:
        raise _fail("give -o PROFILE, or name the file in the schema object's customProperties qstreams.reference")
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("pass 1/2 (bins): 0 rows")

        def progress(pass_no: int, rows: int) -> None:
            what = "bins" if pass_no == 1 else "counts"
            bar.update(task, description=f"pass {pass_no}/2 ({what}): {rows:,} rows")

        try:
            reference = build_reference(loaded, obj.name, data, bins=bins, batch_rows=batch_rows, progress=progress)
            target.parent.mkdir(parents=True, exist_ok=True)
            reference = save_reference(reference, target)
        except (DataFormatError, ProfileError) as exc:
            raise _fail(str(exc)) from None
        except OSError as exc:
            raise _fail(f"cannot write {target}: {exc.strerror}") from None
    typer.echo(
        f"wrote {target}: {reference.profile.rows:,} rows, {len(reference.spec.fields)} fields, "
        f"{target.stat().st_size:,} bytes, sha256 {reference.sha256}"
    )


@profile_app.command("show")
def show(
    profile: Annotated[Path, typer.Argument(help="A reference profile file.")],
    contract: Annotated[
        Path | None, typer.Option("--contract", "-c", help="Check it belongs to this contract (and version).")
    ] = None,
    schema: Annotated[str | None, typer.Option(help="Schema object name when the contract has several.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print a reference profile: identity, then one line per field."""
    from streams.contracts.loader import load_contract
    from streams.profiles.reference import load_reference

    try:
        loaded = load_contract(contract) if contract is not None else None
        reference = load_reference(profile, contract=loaded, schema=schema)
    except (ContractError, ProfileError) as exc:
        raise _fail(str(exc)) from None
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    rows = [_summary(name, p) for name, p in reference.profile.fields.items()]
    if as_json:
        head = {k: v for k, v in reference.body().items() if k not in ("profile", "spec")}
        typer.echo(json.dumps({**head, "sha256": reference.sha256, "rows": reference.profile.rows, "fields": rows}))
        return
    _table(reference, rows)


@profile_app.command("drift")
def drift(
    data: Annotated[list[Path], typer.Argument(help="Parquet, NDJSON / JSON Lines or CSV files to compare.")],
    contract: Annotated[Path, typer.Option("--contract", "-c", help="ODCS contract file.")],
    schema: Annotated[str | None, typer.Option(help="Schema object name (or topic) when there are several.")] = None,
    reference: Annotated[
        Path | None, typer.Option("--reference", "-r", help="Reference profile; default: qstreams.reference.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the drift report as JSON.")] = False,
) -> None:
    """Compare data files with the reference profile, with file semantics: all the files' rows form one profile
    (a worker compares each event-time window instead). Exit 0 without drift, 1 with drift, 2 on errors."""
    from streams.contracts.loader import load_contract
    from streams.profiles.monitor import DriftMonitor
    from streams.profiles.reference import scan_batches

    try:
        loaded = load_contract(contract)
        obj = loaded.schema(schema)
        monitor = DriftMonitor.from_contract(loaded, obj.name, path=reference)
    except (ContractError, ProfileError) as exc:
        raise _fail(str(exc)) from None
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    if monitor is None:
        raise _fail("give --reference PROFILE, or name it in the schema object's customProperties qstreams.reference")
    needed = {f.name for f in monitor.spec.fields}
    p = monitor.spec.prediction
    if p is not None:
        needed |= {n for n in (p.score, p.label, p.model_version) if n is not None}
    columns = pl.Schema({f.name: f.dtype for f in obj.fields if f.name in needed})
    current = monitor.empty()
    try:
        for path in data:
            for batch in scan_batches(path, columns, 100_000):
                current = current.merge(monitor.profile(batch))
    except DataFormatError as exc:
        raise _fail(str(exc)) from None
    report = monitor.drift(current)
    models = monitor.models(current)
    if as_json:
        out = {"semantics": "file", **report.as_dict(), "models": [m.as_dict() for m in models]}
        typer.echo(json.dumps(_clean(out)))
    else:
        for f in report.fields:
            main = f.metrics[0] if f.metrics else None
            shown = f"{main.metric} {main.value:.4g} (threshold {main.threshold:g})" if main and main.threshold else ""
            flagged = ", ".join(r.metric for r in f.metrics if r.drifted)
            typer.echo(f"{f.verdict.value:>17}  {f.field:<28} {shown}  {flagged}".rstrip())
        for m in models:
            typer.echo(
                f"{m.verdict:>17}  model {m.model_version or '(none)'}: expected accuracy {m.expected_accuracy:.4f}"
            )
        typer.echo(f"{len(report.drifted)} of {len(report.fields)} fields drifted; reference {report.reference_sha256} "
                   "(file semantics: all rows of the files as one profile)")  # fmt: skip
    drifted = bool(report.drifted) or any(m.verdict == "drift" for m in models)
    raise typer.Exit(1 if drifted else 0)


def _clean(x: Any) -> Any:
    """JSON-ready: non-finite floats become null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _summary(name: str, p: Any) -> dict[str, Any]:
    from streams.profiles.fields import NumericProfile

    total = p.count + p.nulls
    out: dict[str, Any] = {"field": name, "count": p.count, "null_rate": p.nulls / total if total else 0.0}
    if isinstance(p, NumericProfile):
        out |= {"kind": "numeric", "min": p.min, "mean": p.mean, "std": p.std, "max": p.max, "bins": len(p.hist)}
    else:
        top = sorted(p.counts, key=lambda kv: (-kv[1], kv[0]))[:3]
        out |= {"kind": "categorical", "distinct": round(p.distinct), "top": [v for v, _ in top], "other": p.other}
    return out


def _table(reference: Any, rows: list[dict[str, Any]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    out = Console()
    out.print(
        f"reference of [bold]{reference.contract}[/] schema [bold]{reference.schema}[/]  "
        f"rows {reference.profile.rows:,}  built {reference.created}\n"
        f"sha256 {reference.sha256}  contract sha256 {reference.contract_sha256[:16]}…  "
        f"bins {reference.spec.binning_id}"
    )
    table = Table(box=box.SIMPLE_HEAVY)
    for col in ("field", "kind", "count", "nulls", "summary"):
        table.add_column(col, justify="right" if col in ("count", "nulls") else "left")
    for r in rows:
        if r["kind"] == "numeric":
            fmt = "—" if r["min"] is None else f"min {r['min']:.4g}  mean {r['mean']:.4g}  sd {r['std']:.4g}"
            summary = fmt if r["min"] is None else f"{fmt}  max {r['max']:.4g}  ({r['bins']} bins)"
        else:
            summary = f"{r['distinct']:,} distinct; top {', '.join(r['top'])}" + (
                f"; {r['other']:,} beyond the cap" if r["other"] else ""
            )
        table.add_row(r["field"], r["kind"], f"{r['count']:,}", f"{r['null_rate']:.1%}", summary)
    for version, m in reference.profile.models.items():
        table.add_row(
            f"model {version or '(none)'}", "prediction", f"{m.count:,}", "",
            f"mean score {m.mean_score:.4g}  mean confidence {m.mean_confidence:.4g}  "
            f"expected accuracy {m.expected_accuracy:.4f}",
        )  # fmt: skip
    out.print(table)
