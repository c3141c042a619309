"""Issue 9 on the stream path: integral floats, a dtype failure is not a null, and quarantine
reasons that list only the rules that made the record invalid (fail closed: ``rule_error``)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import orjson
import pyarrow as pa
from typer.testing import CliRunner

from streams.cli.main import app
from streams.contracts.loader import parse_contract
from streams.contracts.model import Contract
from streams.formats.decoder import Decoder, Value
from streams.pipeline.binding import Binding
from streams.pipeline.headers import header
from streams.pipeline.records import Message, OutRecord
from streams.settings import Mode, Settings

HEADER = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:stream
version: 1.0.0
status: active
"""
FLIGHTS = HEADER + textwrap.dedent(
    """\
    schema:
      - name: flights
        physicalName: flights.v1
        properties:
          - {name: dep_time, logicalType: integer, required: true}
          - name: arr_time
            logicalType: integer
            required: true
            quality:
              - {name: late_share, metric: invalidValues, arguments: {validValues: [1, 2, 3]},
                 mustBeLessThan: 90, unit: percent}
              - {name: odd_warn, metric: invalidValues, arguments: {validValues: [600, 700]}, mustBe: 0,
                 severity: warning}
        quality:
          - {name: arrives_after, type: custom, engine: expression, implementation: arr_time >= dep_time}
    """
)


def contract(text: str = FLIGHTS) -> Contract:
    return parse_contract(text)


def messages(*records: dict[str, object]) -> list[Message]:
    return [Message("flights.v1", 0, i, orjson.dumps(r), None, (), 0) for i, r in enumerate(records)]


def h(record: OutRecord, name: str) -> str | None:
    value = header(record.headers, "qstreams." + name)
    return value.decode() if value is not None else None


# --- item 10: integral floats -----------------------------------------------------------------------


def test_json_integral_floats_are_integers_and_fractions_are_not() -> None:
    c = contract()
    d = Decoder(c.schema()).decode(
        [Value(b'{"dep_time": 517.0, "arr_time": 600}'), Value(b'{"dep_time": 517.5, "arr_time": 600}'),
         Value(b'{"dep_time": 1e19, "arr_time": 600}'), Value(b'{"dep_time": -0.0, "arr_time": 600.0}')]
    )  # fmt: skip
    assert d.frame["dep_time"].to_list() == [517, None, None, 0]
    assert d.frame["arr_time"].to_list() == [600, 600, 600, 600]
    assert d.mismatches.select("row", "value").rows() == [(1, "517.5"), (2, "1e+19")]


def test_arrow_integral_floats_are_integers() -> None:
    c = contract()
    table = pa.table({"dep_time": pa.array([517.0, 517.5, None]), "arr_time": pa.array([600.0, 700.0, 800.0])})
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    d = Decoder(c.schema()).decode([Value(sink.getvalue())])
    assert d.frame["dep_time"].to_list() == [517, None, None] and d.frame["arr_time"].to_list() == [600, 700, 800]
    assert d.mismatches.select("row", "value").rows() == [(1, "517.5")]


def test_ndjson_file_with_integral_floats_passes(tmp_path: Path) -> None:
    path, data = tmp_path / "c.odcs.yaml", tmp_path / "flights.ndjson"
    path.write_text(FLIGHTS)
    data.write_bytes(b'{"dep_time": 517.0, "arr_time": 600.0}\n{"dep_time": 554.0, "arr_time": 700}\n')
    res = CliRunner().invoke(app, ["validate", str(data), "--contract", str(path), "--format", "json"])
    report = orjson.loads(res.stdout)
    checks = {ch["name"]: ch for ch in report["checks"]}
    assert report["invalid_rows"] == 0 and checks["dep_time:dtype"]["passed"], res.output
    assert checks["arr_time:dtype"]["failures"] == 0 and checks["arrives_after"]["passed"]


# --- item 1 on the stream path: a wrong-typed value is a dtype failure, not also a null ----------------


def test_stream_dtype_failure_is_not_also_a_null() -> None:
    c = contract()
    b = Binding(c, c.schema(), Settings(mode=Mode.GATE))
    result = b.process(
        messages({"dep_time": 517.5, "arr_time": 600}, {"dep_time": 500, "arr_time": 400}), worker_id="w"
    )
    report = result.report
    assert report is not None
    assert report.check("dep_time:dtype").failures == 1 and report.check("dep_time:required").passed  # type: ignore[attr-defined]
    [q1, q2] = result.quarantined
    assert h(q1, "errors.rules") == "dep_time:dtype" and h(q2, "errors.rules") == "arrives_after"


# --- item 11: CSV read with the contract's types ---------------------------------------------------------


def test_csv_string_property_keeps_its_leading_zero(tmp_path: Path) -> None:
    path, data = tmp_path / "c.odcs.yaml", tmp_path / "zips.csv"
    path.write_text(
        HEADER
        + "schema:\n  - name: t\n    properties:\n"
        + "      - {name: zip, logicalType: string, logicalTypeOptions: {pattern: '^[0-9]{5}$'}}\n"
        + "      - {name: n, logicalType: integer}\n"
    )
    data.write_text("zip,n\n01234,1\n98765,2\n")
    good = tmp_path / "good.csv"
    res = CliRunner().invoke(app, ["validate", str(data), "--contract", str(path), "--out-valid", str(good)])
    assert res.exit_code == 0, res.output
    assert good.read_text().splitlines()[1].startswith("01234,")


# --- item 12: reasons list only the gating rules; rule_error -------------------------------------------


def test_quarantine_headers_list_only_the_rules_that_made_the_record_invalid() -> None:
    c = contract()
    b = Binding(c, c.schema(), Settings(mode=Mode.GATE))
    # row 0 fails the warning and the (passing) percent rule only; row 1 also breaks arrives_after
    result = b.process(
        messages({"dep_time": 500, "arr_time": 600}, {"dep_time": 900, "arr_time": 800},
                 {"dep_time": 1, "arr_time": 2}, {"dep_time": 1, "arr_time": 3}),
        worker_id="w",
    )  # fmt: skip
    assert result.counts["valid"] == 3
    [q] = result.quarantined
    assert h(q, "errors.rules") == "arrives_after" and h(q, "errors.class") == "contract.violation"
    assert "odd_warn" not in (h(q, "errors.message") or "")


BROKEN = HEADER + textwrap.dedent(
    """\
    schema:
      - name: codes
        physicalName: codes.v1
        properties:
          - {name: code, logicalType: string}
        quality:
          - {name: numeric, type: sql, query: SELECT SUM(CAST(code AS INTEGER)) FROM codes, mustBeGreaterThan: 0}
    """
)


def test_a_rule_error_quarantines_with_reason_rule_error_unless_configured_to_pass() -> None:
    c = contract(BROKEN)
    msgs = [Message("codes.v1", 0, i, orjson.dumps({"code": v}), None, (), 0) for i, v in enumerate(["1", "x"])]
    result = Binding(c, c.schema(), Settings(mode=Mode.GATE)).process(msgs, worker_id="w")
    assert result.counts["quarantined"] == 2 and not result.validated
    assert {h(q, "errors.class") for q in result.quarantined} == {"contract.rule_error"}
    assert {h(q, "errors.rules") for q in result.quarantined} == {"numeric"}
    lenient = Binding(c, c.schema(), Settings(mode=Mode.GATE, on_rule_error="pass")).process(msgs, worker_id="w")
    assert lenient.counts["valid"] == 2 and not lenient.quarantined


def test_rule_errors_reach_the_worker_metrics() -> None:
    from streams.kafka.observers import MetricsObserver
    from streams.kafka.transport import TopicPartition
    from streams.observability import Metrics

    c = contract(BROKEN)
    b = Binding(c, c.schema(), Settings(mode=Mode.GATE))
    msgs = [Message("codes.v1", 0, 0, orjson.dumps({"code": "x"}), None, (), 0)]
    metrics = Metrics()
    observer = MetricsObserver(metrics, {b.topic: b})
    observer.on_batch_end(TopicPartition("codes.v1", 0), b, 1, b.process(msgs, worker_id="w"), None)
    assert 'qstreams_rule_errors_total{contract="urn:test:stream",rule="numeric"} 1.0' in metrics.render().decode()
