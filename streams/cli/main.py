"""The ``qstreams`` command line.

Exit codes are a stable interface for CI jobs in data repos:

* ``0`` — success (every error-severity rule passed; the contracts lint clean);
* ``1`` — findings (a rule failed; lint found problems);
* ``2`` — usage or contract errors (bad arguments, a contract that cannot be loaded).
"""

from __future__ import annotations

import json
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from streams.cli.diff import contracts_diff
from streams.cli.governance import register as register_governance
from streams.cli.performance import register as register_performance
from streams.cli.policies import register as register_policies
from streams.cli.profile import profile_app
from streams.errors import ContractError, DataFormatError, SettingsError, StreamsError

if TYPE_CHECKING:
    from streams.contracts.model import Contract

app = typer.Typer(
    name="qstreams",
    help="Data contracts enforced on Kafka streams: lint and validate ODCS contracts, run stream workers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: "[env X]" stays text, no "<bool>" beside --help
)
contracts_app = typer.Typer(help="Work with ODCS contract files.", no_args_is_help=True, rich_markup_mode=None)
dev_app = typer.Typer(
    help="Development helpers: a local Apache Kafka broker.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(contracts_app, name="contracts")
app.add_typer(dev_app, name="dev")
app.add_typer(profile_app, name="profile")
contracts_app.command("diff")(contracts_diff)
register_governance(app)  # qstreams archive, evidence, report, lineage
register_policies(app)  # qstreams policies run, incidents resolve, events tail
register_performance(app)  # qstreams performance run

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contracts_app.command("lint")
def lint(
    paths: Annotated[list[Path], typer.Argument(help="Contract files or directories (*.yaml, *.yml).")],
    allow_unowned: Annotated[
        bool, typer.Option(help="Accept contracts in use without owner or support channel.")
    ] = False,
) -> None:
    """Check contracts against their ODCS version and what the engine runs (every rule is dry-run); print
    file:line: message. Notes (what the worker does not enforce) do not fail. No data is judged (neither file nor
    stream semantics). Exit codes: 0 clean, 1 problems found, 2 usage error (no such file, no contract files)."""
    from streams.contracts.loader import _contract_files
    from streams.lint import lint_file

    files = list(_contract_files(list(paths)))
    missing = [p for p in files if not p.exists()]
    if missing:
        raise _fail(f"no such file: {missing[0]}")
    if not files:
        raise _fail("no contract files (*.yaml, *.yml) found in the given paths")
    findings = [f for p in files for f in lint_file(p, allow_unowned=allow_unowned)]
    for f in findings:
        typer.echo(str(f))
    problems = [f for f in findings if not f.note]
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {len({f.path for f in problems})} of {len(files)} file(s)", err=True)
        raise typer.Exit(EXIT_FINDINGS)
    notes = len(findings)
    typer.echo(f"{len(files)} contract file(s) OK" + (f" ({notes} note(s): not enforced)" if notes else ""), err=True)


@app.command("validate")
def validate(
    data: Annotated[
        Path, typer.Argument(help="Parquet, Arrow IPC (Feather), NDJSON / JSON Lines, JSON or CSV / TSV file.")
    ],
    contract: Annotated[
        Path | None, typer.Option("--contract", "-c", metavar="FILE", help="ODCS contract file.")
    ] = None,
    schema: Annotated[
        str | None, typer.Option(metavar="NAME", help="Schema object name (or topic) when the contract has several.")
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", metavar="table|json", help="Output format.")
    ] = OutputFormat.TABLE,
    out_valid: Annotated[
        Path | None, typer.Option("--out-valid", metavar="FILE", help="Write valid rows here.")
    ] = None,
    out_invalid: Annotated[
        Path | None,
        typer.Option("--out-invalid", metavar="FILE", help="Write invalid rows plus a `_violations` column here."),
    ] = None,
    max_cases: Annotated[int, typer.Option("--max-cases", min=0, metavar="N", help="Failure cases to show.")] = 20,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter",
            metavar="CHAR",
            help="A CSV file's field separator (default ',', a tab in TSV files; 'tab' for a tab).",
        ),
    ] = None,
    pandera: Annotated[
        str | None,
        typer.Option(
            "--pandera",
            metavar="MODULE:ATTR",
            help="A pandera.polars DataFrameModel/DataFrameSchema as package.module:attr, instead of --contract. "
            "This IMPORTS AND RUNS that module: use it for trusted code only.",
        ),
    ] = None,
) -> None:
    """Validate a data file against a contract, with file semantics: the file is judged as a whole (pandera's
    semantics), not per record and event-time window as a stream worker does. Exit codes: 0 if every error rule
    passes, 1 if one fails, 2 on a usage or contract error. --format json states "semantics": "file"."""
    from streams.cli.files import read_and_validate, write_table
    from streams.cli.render import FILE_SEMANTICS, FILE_SEMANTICS_NOTE, render_report
    from streams.contracts.loader import load_contract

    if (contract is None) == (pandera is None):
        raise _fail("give exactly one of --contract FILE or --pandera package.module:attr")
    try:
        loaded = load_contract(contract) if contract is not None else _pandera_contract(str(pandera))
        schema_obj = loaded.schema(schema)
    except ContractError as exc:
        raise _fail(str(exc)) from None
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    try:
        sep = "\t" if delimiter in ("tab", "\\t") else delimiter
        df, report, found = read_and_validate(data, loaded, schema_obj, sep)
    except DataFormatError as exc:
        raise _fail(str(exc)) from None
    if fmt is OutputFormat.JSON:
        out = {"semantics": FILE_SEMANTICS, "semantics_note": FILE_SEMANTICS_NOTE}
        out |= report.to_dict(max_cases=max_cases)
        typer.echo(json.dumps(out, default=str, indent=2))
    else:
        render_report(report, max_cases=max_cases)
    try:
        if out_valid is not None:
            write_table(df.filter(report.valid_mask), out_valid)
        if out_invalid is not None:
            # only the rules that made each row invalid (not warnings or thresholded rules); values as found
            invalid = found.with_columns(report.gating().alias("_violations")).filter(~report.valid_mask)
            write_table(invalid, out_invalid)
    except DataFormatError as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(EXIT_OK if report.passed else EXIT_FINDINGS)


def _pandera_contract(spec: str) -> Contract:
    import os

    from streams.validation.pandera import from_pandera, load_pandera_object

    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules of the data repo itself
    obj = load_pandera_object(spec)
    return from_pandera(obj, contract_id=f"pandera:{spec}", version="0")


@dev_app.command("broker")
def dev_broker(
    port: Annotated[int, typer.Option(metavar="PORT", help="Port of the PLAINTEXT listener on 127.0.0.1.")] = 9092,
) -> None:
    """Run a single-node KRaft Apache Kafka on 127.0.0.1 until Ctrl-C (uses KAFKA_BOOTSTRAP_SERVERS if set)."""
    from streams.dev.broker import run_dev_broker

    _logging("INFO")
    from streams.observability import quiet_kafka_clients

    quiet_kafka_clients()  # kafka-python's INFO lines (connections, metadata) would flood the output

    def ready(bootstrap: str) -> None:
        typer.echo(f"Kafka is ready at {bootstrap} (Ctrl-C to stop)")
        typer.echo(f"  export KAFKA_BOOTSTRAP_SERVERS={bootstrap}")

    try:
        run_dev_broker(port, ready)
    except StreamsError as exc:
        raise _fail(str(exc)) from None


@app.command("worker")
def worker(
    contracts: Annotated[
        Path | None,
        typer.Option("--contracts", metavar="PATH", help="Contract directory or file [env STREAMS_CONTRACTS_DIR]."),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            metavar="HOST:PORT",
            help="Bootstrap servers, comma-separated; kafka://host:port accepted [env KAFKA_BOOTSTRAP_SERVERS].",
        ),
    ] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", metavar="gate|monitor", help="gate or monitor [env STREAMS_MODE].")
    ] = None,
    web_port: Annotated[
        int | None,
        typer.Option(
            "--web-port",
            metavar="PORT",
            help="Port of /metrics and /health (0: none) [env STREAMS_WEB_PORT, default 6066].",
        ),
    ] = None,
) -> None:
    """Run a stream worker: validate every bound topic, route records, emit quality events. Stream semantics:
    each record is routed by its own verdict; counts, rates, uniqueness and drift are judged per event-time
    window (per poll batch without stream time), not over a whole file as `validate` does."""
    from streams.kafka.worker import run_worker
    from streams.settings import load_settings

    overrides: dict[str, object] = {}
    if contracts is not None:
        overrides["contracts_dir"] = contracts
    if broker is not None:
        overrides["bootstrap_servers"] = broker
    if mode is not None:
        overrides["mode"] = mode
    if web_port is not None:
        overrides["web_port"] = web_port
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        raise _fail(f"invalid settings: {exc}") from None
    _logging(settings.log_level)
    from streams.cli.policies import worker_observers as kafka_observers

    try:
        code = run_worker(settings, kafka_observers)
    except ContractError as exc:
        raise _fail(f"contract refused: {exc}") from None
    except StreamsError as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


@app.command("demo")
def demo(
    duration: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds of traffic (incidents are scheduled within it).")
    ] = 90.0,
    rate: Annotated[float, typer.Option(metavar="N", help="Records per second, per producer.")] = 200.0,
    headless: Annotated[bool, typer.Option(help="Print progress lines instead of the live view.")] = False,
    contracts: Annotated[Path, typer.Option(metavar="PATH", help="Contracts the worker enforces.")] = Path("contracts"),
    mode: Annotated[str, typer.Option(metavar="gate|monitor", help="Worker mode: gate or monitor.")] = "gate",
    broker: Annotated[
        str | None,
        typer.Option(metavar="HOST:PORT", help="Use this Kafka instead of starting one [env KAFKA_BOOTSTRAP_SERVERS]."),
    ] = None,
) -> None:
    """Run everything: a local Kafka, a worker, producers with scheduled incidents, and a live view."""
    from streams.demo.run import DemoOptions, run_demo

    headless = headless or not sys.stdout.isatty()
    options = DemoOptions(
        duration_s=duration, rate=rate, headless=headless, contracts=contracts, mode=mode, broker=broker
    )
    from rich.console import Console

    console = Console(width=140) if not sys.stdout.isatty() else Console()
    try:
        code = run_demo(options, console)
    except StreamsError as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


@app.command("produce")
def produce_cmd(
    stream: Annotated[str, typer.Argument(help="features or predictions")],
    rate: Annotated[float, typer.Option(metavar="N", help="Records per second.")] = 200.0,
    duration: Annotated[float, typer.Option(metavar="SECONDS", help="Seconds to run; 0 runs until stopped.")] = 0.0,
    incidents: Annotated[bool, typer.Option(help="Inject the demo's incidents, repeating every --cycle s.")] = False,
    cycle: Annotated[float, typer.Option(metavar="SECONDS", help="Length of one incident cycle in seconds.")] = 300.0,
    broker: Annotated[
        str | None, typer.Option(metavar="HOST:PORT", help="Bootstrap servers [env KAFKA_BOOTSTRAP_SERVERS].")
    ] = None,
) -> None:
    """Produce realistic demo traffic to the example topics (what the Compose producers run)."""
    import asyncio
    import os

    from streams.demo.producers import ProducerStats, produce
    from streams.demo.scenario import default_schedule

    if stream not in ("features", "predictions"):
        raise _fail(f"unknown stream {stream!r}; use features or predictions")
    bootstrap = broker or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    schedule = default_schedule(cycle) if incidents else []

    from streams.kafka.connection import plain_producer_config
    from streams.settings import load_settings

    try:  # the worker's connection settings: security (SASL/SSL) from STREAMS_* applies here too
        config = plain_producer_config(load_settings(bootstrap_servers=bootstrap), "qstreams-produce",
                                       linger_ms=20, acks="all", enable_idempotence=True)  # fmt: skip
    except SettingsError as exc:
        raise _fail(f"invalid settings: {exc}") from None

    async def go() -> ProducerStats:
        from aiokafka import AIOKafkaProducer

        stats = ProducerStats()
        producer = AIOKafkaProducer(**config)
        await producer.start()
        try:
            await produce(
                producer,
                stream,
                rate=rate,
                duration_s=duration or None,
                incidents=schedule,
                stats=stats,
                cycle_s=cycle if incidents else None,
            )
        finally:
            await producer.stop()
        return stats

    try:
        stats = asyncio.run(go())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    typer.echo(f"sent {stats.sent[stream]} {stream} records to {config['bootstrap_servers']}")


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
