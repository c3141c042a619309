"""The pure pipeline without a broker: routing, the exactly-one-output invariant, headers, events, redaction."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow as pa
import pytest

from streams.contracts.loader import load_contract
from streams.contracts.model import Contract
from streams.formats.reasons import DecodeReason
from streams.pipeline.binding import Binding
from streams.pipeline.headers import MAX_VALUE_BYTES, NDJSON, header
from streams.pipeline.records import BatchResult, Message, OutRecord
from streams.settings import Mode, Settings
from streams.testing import (
    BASE_TIMESTAMP_MS,
    Fault,
    generate_feature_frame,
    generate_feature_records,
    generate_prediction_records,
    make_messages,
    run_batch,
    undecodable_messages,
)
from streams.validation.report import ValidationReport

ROOT = Path(__file__).resolve().parents[3]
FEATURES = ROOT / "contracts" / "card_transactions.odcs.yaml"
PREDICTIONS = ROOT / "contracts" / "fraud_predictions.odcs.yaml"
TOPIC = "features.card-transactions.v1"
P = "qstreams."
ALL_FAULTS = {f.value: 0.03 for f in Fault}


@pytest.fixture(scope="module")
def features() -> Contract:
    return load_contract(FEATURES)


def binding(contract: Contract, mode: str = "gate", **settings: Any) -> Binding:
    settings.setdefault("batch_events", True)  # these tests read the per-batch events
    return Binding(contract, contract.schema(), Settings(mode=Mode(mode), **settings))


def h(record: OutRecord, name: str) -> str | None:
    value = header(record.headers, P + name)
    return value.decode() if value is not None else None


def events_of(result: BatchResult, kind: str) -> list[dict[str, Any]]:
    return [orjson.loads(e.value or b"") for e in result.events if header(e.headers, "ce_type") == kind.encode()]


def report_of(result: BatchResult) -> ValidationReport:
    assert isinstance(result.report, ValidationReport)
    return result.report


def errored(result: BatchResult) -> set[str]:
    """Rules the engine could not run (reported as failed checks with ``error`` set)."""
    return {c.name for c in report_of(result).checks if c.error is not None} if result.report is not None else set()


def per_field(entries: Any) -> dict[str, int]:
    """Drift entries as ``{field: records}``, whether the event lists them or maps them."""
    if isinstance(entries, dict):
        return {str(k): int(v) for k, v in entries.items()}
    return {e["field"]: e["records"] for e in entries}


def faulty_batch(seed: int, n: int = 300) -> tuple[list[Message], Any]:
    """Records with every fault, plus one undecodable message of each kind, interleaved; offsets = positions."""
    batch = generate_feature_records(n, seed=seed, faults=ALL_FAULTS)
    values: list[bytes | dict[str, Any]] = list(batch.records)
    for k, (_, m) in enumerate(undecodable_messages(TOPIC, max_message_bytes=50_000)):
        values.insert(17 * (k + 1), m.value or b"")
    return make_messages(values, TOPIC), batch


def source_offset(record: OutRecord) -> int:
    """Validated records carry no error headers: their timestamp gives their offset back (make_messages)."""
    if record.topic.endswith(".validated"):
        assert record.timestamp_ms is not None
        return record.timestamp_ms - BASE_TIMESTAMP_MS
    return int(h(record, "errors.offset") or -1)


# --- routing -------------------------------------------------------------------------------------------


def test_clean_batch_is_forwarded_byte_for_byte(features: Contract) -> None:
    recs = generate_feature_records(50, seed=2).records
    msgs = make_messages(recs, TOPIC, partition=2, start_offset=100, key_field="event_id")
    msgs[3] = Message(TOPIC, 2, 103, msgs[3].value, msgs[3].key, (("trace-id", b"abc"),), msgs[3].timestamp_ms)
    result = binding(features).process(msgs, worker_id="w1")
    assert result.counts == {"valid": 50, "quarantined": 0, "dead_lettered": 0}
    assert not result.quarantined and not result.dead_lettered
    for m, out in zip(msgs, result.validated, strict=True):
        assert out.topic == TOPIC + ".validated" and out.partition is None
        assert (out.value, out.key, out.timestamp_ms) == (m.value, m.key, m.timestamp_ms)
        assert out.headers[: len(m.headers)] == m.headers
        assert out.headers[len(m.headers) :] == (
            (P + "contract", features.ref.encode()),
            (P + "contract.sha256", features.sha256.encode()),
        )
    assert result.last_offsets == {2: 149}
    kinds = Counter(header(e.headers, "ce_type") for e in result.events)
    assert kinds[b"io.qualitystreams.batch.summary.v1"] == 1
    assert {v["rule"]["name"] for v in events_of(result, "io.qualitystreams.rule.violation.v1")} <= errored(result)


@pytest.mark.parametrize("mode", ["gate", "monitor"])
def test_faulty_batch_counts_are_exact(features: Contract, mode: str) -> None:
    batch = generate_feature_records(600, seed=3, faults=ALL_FAULTS)
    result = binding(features, mode).process(make_messages(batch.records, TOPIC), worker_id="w")
    invalid = len(batch.expected_invalid)
    assert result.counts == {"valid": 600 - invalid, "quarantined": invalid, "dead_lettered": 0}
    assert len(result.quarantined) == invalid
    assert len(result.validated) == (600 - invalid if mode == "gate" else 0)
    assert report_of(result).invalid_rows == invalid


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("mode", ["gate", "monitor"])
def test_every_message_lands_in_exactly_one_output(features: Contract, seed: int, mode: str) -> None:
    msgs, batch = faulty_batch(seed)
    result = binding(features, mode, max_message_bytes=50_000).process(msgs, worker_id="w")
    outcomes = {"validated": result.validated, "quarantine": result.quarantined, "dlq": result.dead_lettered}
    seen: dict[str, list[int]] = {k: [source_offset(r) for r in v] for k, v in outcomes.items()}
    for kind, records in outcomes.items():
        assert all(r.topic == f"{TOPIC}.{kind}" for r in records)
    everything = [o for offsets in seen.values() for o in offsets]
    assert len(everything) == len(set(everything)), "a message was routed twice"
    dropped = {m.offset for m in msgs} - set(everything)
    if mode == "gate":
        assert not dropped
    else:
        assert not seen["validated"] and len(dropped) == result.counts["valid"]
    assert len(seen["dlq"]) == len(DecodeReason) == result.counts["dead_lettered"]
    assert result.counts["quarantined"] == len(batch.expected_invalid) == len(seen["quarantine"])
    assert sum(result.counts.values()) == len(msgs)


def test_quarantine_headers_name_rules_and_keep_the_original(features: Contract) -> None:
    recs = generate_feature_records(3, seed=4).records
    recs[1]["channel"] = "web"
    recs[1]["hour_of_day"] = 31
    msgs = make_messages(recs, TOPIC, partition=1, start_offset=7)
    msgs[1] = Message(TOPIC, 1, 8, msgs[1].value, b"k", (("origin", b"svc-a"),), msgs[1].timestamp_ms)
    result = binding(features).process(msgs, worker_id="w")
    [q] = result.quarantined
    assert (q.value, q.key, q.timestamp_ms, q.partition) == (msgs[1].value, b"k", msgs[1].timestamp_ms, None)
    assert q.headers[0] == ("origin", b"svc-a")
    assert [k for k, _ in q.headers[1:]] == [
        *(
            P + "errors." + n
            for n in ("topic", "partition", "offset", "contract", "rules", "class", "message", "stage")
        ),
        P + "mode",
        P + "worker",
    ]
    assert (h(q, "errors.topic"), h(q, "errors.partition"), h(q, "errors.offset")) == (TOPIC, "1", "8")
    assert h(q, "errors.contract") == features.ref
    assert set((h(q, "errors.rules") or "").split(",")) == {"channel:invalidValues", "hour_of_day:in_range"}
    assert (h(q, "errors.class"), h(q, "errors.stage")) == ("contract.violation", "validate")
    message = h(q, "errors.message") or ""
    assert message.startswith("The record breaks contract") and message.endswith(".")
    assert "web" not in message and "31" not in message


def test_dead_letter_headers(features: Contract) -> None:
    examples = list(undecodable_messages(TOPIC, max_message_bytes=5000))
    result = binding(features, max_message_bytes=5000).process([m for _, m in examples], worker_id="w")
    assert len(result.dead_lettered) == len(examples)
    for (reason, m), d in zip(examples, result.dead_lettered, strict=True):
        assert (d.value, d.topic) == (m.value, TOPIC + ".dlq")
        assert (h(d, "errors.class"), h(d, "errors.stage")) == (f"decode.{reason}", "decode")
        assert h(d, "errors.offset") == str(m.offset) and h(d, "errors.rules") is None
        assert (h(d, "errors.message") or "").endswith(".")
    kinds = [header(e.headers, "ce_type") for e in result.events]
    assert kinds == [b"io.qualitystreams.batch.summary.v1"]
    summary = events_of(result, "io.qualitystreams.batch.summary.v1")[0]
    assert summary["counts"]["dead_lettered"] == len(examples) and summary["rows"] == 0


def test_header_values_are_bounded(features: Contract) -> None:
    rec = generate_feature_records(1, seed=1).records[0]
    long_topic = "t" * 3000
    msg = Message(long_topic, 0, 0, orjson.dumps({**rec, "channel": "x"}))
    result = binding(features).process([msg], worker_id="w")
    [q] = result.quarantined
    assert all(len(v) <= MAX_VALUE_BYTES for _, v in q.headers)
    assert (h(q, "errors.topic") or "").endswith("…")


# --- multi-record messages ----------------------------------------------------------------------------------


def test_ndjson_message_is_routed_per_record(features: Contract) -> None:
    recs = generate_feature_records(5, seed=6).records
    recs[1]["currency"] = "XBT"
    recs[3]["merchant_category_code"] = "5x11"
    lines = [orjson.dumps(r) for r in recs]
    lines.insert(2, b"{oops")
    value = b"\n".join(lines) + b"\n"
    m = Message(TOPIC, 0, 42, value, b"key", (("content-type", NDJSON.encode()),), BASE_TIMESTAMP_MS)
    result = binding(features).process([m], worker_id="w")
    [v], [q], [d] = result.validated, result.quarantined, result.dead_lettered
    assert v.value == b"\n".join([lines[0], lines[3], lines[5]]) + b"\n"
    assert (h(v, "records"), h(v, "records.index")) == ("3", "0,3,5")
    assert v.headers[0] == ("content-type", NDJSON.encode())
    assert q.value == b"\n".join([lines[1], lines[4]]) + b"\n"
    assert (h(q, "records"), h(q, "records.index")) == ("2", "1,4")
    assert set((h(q, "errors.rules") or "").split(",")) == {"currency:isin", "merchant_category_code:pattern"}
    assert (h(q, "errors.message") or "").startswith("2 records of this NDJSON message break")
    assert d.value == b"{oops\n" and h(d, "errors.class") == "decode.NOT_JSON" and h(d, "records.index") == "2"
    assert result.counts == {"valid": 3, "quarantined": 2, "dead_lettered": 1}


def test_arrow_message_is_routed_per_record(features: Contract) -> None:
    frame = generate_feature_frame(6, seed=8).with_columns(
        pl.when(pl.int_range(pl.len()) == 4)
        .then(pl.lit(99, pl.Int8))
        .otherwise(pl.col("hour_of_day"))
        .alias("hour_of_day")
    )
    table = frame.to_arrow()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    result = binding(features).process([Message(TOPIC, 0, 0, sink.getvalue().to_pybytes())], worker_id="w")
    [v], [q] = result.validated, result.quarantined
    good = pl.from_arrow(pa.ipc.open_stream(v.value).read_all())
    bad = pl.from_arrow(pa.ipc.open_stream(q.value).read_all())
    assert isinstance(good, pl.DataFrame) and isinstance(bad, pl.DataFrame)
    assert good.equals(frame.filter(pl.int_range(pl.len()) != 4)) and bad.equals(frame.slice(4, 1))
    assert (h(q, "records"), h(q, "errors.rules")) == ("1", "hour_of_day:in_range")


# --- type mismatches, drift and events ------------------------------------------------------------------------


def test_type_mismatches_fail_the_dtype_rule_and_raise_drift(features: Contract) -> None:
    recs = generate_feature_records(10, seed=9).records
    recs[2]["txn_count_24h"] = "12"
    recs[5]["txn_count_1h"] = 2**40  # an int64 in an int32 field: the engine's conformance catches it
    recs[7]["promo_code"] = "X"
    result = binding(features).process(make_messages(recs, TOPIC), worker_id="w")
    report = report_of(result)
    assert report.check("txn_count_24h:dtype").failures == 1 and not report.check("txn_count_24h:dtype").passed
    assert "txn_count_24h:dtype" in report.violations[2] and not report.valid_mask[2]
    cases = report.failure_cases.filter(pl.col("rule") == "txn_count_24h:dtype")
    assert cases.select("failure_case", "index").rows() == [('"12"', 2)]
    assert {source_offset(q) for q in result.quarantined} == {2, 5}
    assert "txn_count_24h:dtype" in (h(result.quarantined[0], "errors.rules") or "")
    [drift] = events_of(result, "io.qualitystreams.schema.drift.v1")
    assert per_field(drift["type_mismatches"]) == {"txn_count_24h": 1, "txn_count_1h": 1}
    assert per_field(drift["unknown_fields"]) == {"promo_code": 1}
    assert result.rule_failures["txn_count_24h:dtype"] == 1


def test_events_summary_window_offsets_and_violations(features: Contract) -> None:
    batch = generate_feature_records(100, seed=10, faults={"invalid_enum": 0.05})
    msgs = make_messages(batch.records, TOPIC, partition=3, start_offset=500)
    result = binding(features, "monitor").process(msgs, worker_id="worker-7")
    assert all(e.topic == "dq.quality-events.v1" and e.key == features.id.encode() for e in result.events)
    [summary] = events_of(result, "io.qualitystreams.batch.summary.v1")
    assert summary["offsets"] == [{"partition": 3, "first": 500, "last": 599}]
    assert summary["window"]["start"].startswith("2025-03-01T00:00:00") and summary["mode"] == "monitor"
    assert summary["counts"] == result.counts and summary["worker_id"] == "worker-7"
    violations = events_of(result, "io.qualitystreams.rule.violation.v1")
    assert violations and all(v["failures"] > 0 for v in violations)
    assert sum(v["failures"] for v in violations if v["rule"]["severity"] == "error") >= 5


def test_nothing_classified_leaks_into_headers_or_events(features: Contract) -> None:
    batch = generate_feature_records(200, seed=12, faults=ALL_FAULTS)
    recs = batch.records
    recs[0]["card_hash"] = "SECRET-CARD-0000"  # bad pattern of a restricted column
    recs[1]["card_hash"] = 987654321  # wrong type of a restricted column
    recs[2]["customer_email"] = "not-an-email-secret"  # warning rule on a PII column
    recs[3]["customer_email"] = ["leak@example.com"]  # wrong type on a PII column
    result = binding(features).process(make_messages(recs, TOPIC), worker_id="w")
    secrets = {str(r.get("card_hash")) for r in recs} | {str(r.get("customer_email")) for r in recs}
    secrets |= {"leak@example.com", "987654321"}
    secrets.discard("None")
    blobs = [e.value or b"" for e in result.events] + [v for r in result.outputs() for _, v in r.headers]
    for blob in blobs:
        for secret in secrets:
            assert secret.encode() not in blob, secret
    assert events_of(result, "io.qualitystreams.rule.violation.v1")  # samples were built, and redacted


def test_predictions_contract_counts_are_exact() -> None:
    batch = generate_prediction_records(500, seed=13, faults={f.value: 0.02 for f in Fault})
    result = run_batch(PREDICTIONS, make_messages(batch.records, "predictions.card-fraud.v1"))
    assert result.counts["quarantined"] == len(batch.expected_invalid)
    assert result.counts["valid"] == 500 - len(batch.expected_invalid)


def test_clean_generated_data_passes_every_rule(features: Contract) -> None:
    for contract, batch in (
        (features, generate_feature_records(2000, seed=14)),
        (load_contract(PREDICTIONS), generate_prediction_records(2000, seed=14)),
    ):
        result = run_batch(contract, make_messages(batch.records, contract.schema().topic))
        assert result.counts["valid"] == 2000
        assert [c.name for c in report_of(result).failed_checks() if c.error is None] == []
        kinds = [header(e.headers, "ce_type") for e in result.events]
        assert kinds.count(b"io.qualitystreams.batch.summary.v1") == 1
        assert len(kinds) == 1 + len(errored(result)), "only rules the engine could not run may fail on clean data"


# --- robustness ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError, pl.exceptions.PanicException])
def test_unexpected_exception_dead_letters_only_the_culprit(
    features: Contract, monkeypatch: Any, error: type[BaseException]
) -> None:
    # polars raises PanicException (a BaseException, not an Exception) where it has not implemented something (its
    # JSON encoding of binary values did): it escaped every guard of the pipeline and stopped the worker
    b = binding(features)
    recs = generate_feature_records(40, seed=15).records
    recs[21]["merchant_id"] = "boom"
    validate = b.plan.validate

    def fragile(df: pl.DataFrame) -> Any:
        if (df.get_column("merchant_id") == "boom").any():
            raise error("engine bug")
        return validate(df)

    monkeypatch.setattr(b.plan, "validate", fragile)
    result = b.process(make_messages(recs, TOPIC), worker_id="w")
    [d] = result.dead_lettered
    assert (h(d, "errors.class"), h(d, "errors.stage"), h(d, "errors.offset")) == (
        f"internal.{error.__name__}",
        "internal",
        "21",
    )
    assert "engine bug" not in (h(d, "errors.message") or "")
    assert result.counts == {"valid": 39, "quarantined": 0, "dead_lettered": 1}
    assert len(result.validated) == 39 and result.events


def test_empty_batch_and_tombstone(features: Contract) -> None:
    assert binding(features).process([], worker_id="w") == BatchResult()
    result = binding(features).process([Message(TOPIC, 0, 5, None, b"k")], worker_id="w")
    [d] = result.dead_lettered
    assert d.value is None and d.key == b"k" and h(d, "errors.class") == "decode.EMPTY"
    assert result.last_offsets == {0: 5}


def test_custom_header_prefix_and_topics(features: Contract) -> None:
    b = binding(features, header_prefix="dq-", validated_suffix="-ok")
    rec = generate_feature_records(1, seed=1).records[0]
    [v] = b.process(make_messages([rec], TOPIC), worker_id="w").validated
    assert v.topic == TOPIC + "-ok" and v.headers[0] == ("dq-contract", features.ref.encode())
