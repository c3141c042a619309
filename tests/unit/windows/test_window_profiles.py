"""Window profiles: the profile of each batch slice travels in the window partial, merges across batches,
partitions and workers (through the partial codec, as on the internal topic) into the profile of the window's
records taken in one pass, and the finalized window is judged against the reference: drift events per window,
``insufficient_data`` (never an alarm) when a window has too few values."""

from __future__ import annotations

import math
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest

from streams.events.codec import event_data, validate_event
from streams.events.drift import distribution_drift, prediction_confidence, window_drift_events
from streams.events.window import window_summary
from streams.profiles.drift import Verdict
from streams.profiles.profile import merge_profiles
from streams.validation.engine import compile_plan
from streams.windows.clock import PartitionClock
from streams.windows.codec import Heartbeat, Partial, Undecodable, _frame, decode, encode, record_key
from streams.windows.finalize import finalize
from streams.windows.merger import WindowMerger
from streams.windows.partial import WindowPartial, merge
from streams.windows.stream import StreamConfig, StreamTime
from tests.unit.profiles.test_profile_merge import assert_same

from .drift_helpers import COUNTRIES, drifting
from .helpers import LATENESS_MS, T0, WINDOW_MS
from .test_stream_time import Topic, batches, oracle, restore

CONFIG = StreamConfig(WINDOW_MS, LATENESS_MS, idle_ms=5_000, max_skew_ms=3_600_000, unique_ms=3_600_000)
PARTITIONS = 4
NOW = T0 + 120_000


def records(seed: int, n: int, shift: float = 0.0) -> list[tuple]:
    """(partition, id, event time offset, amount, country, code): late records, nulls, bad rows included."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        amount = None if rng.random() < 0.01 else float(rng.normal(40.0 + shift, 10.0))
        country = None if rng.random() < 0.05 else [*COUNTRIES, "XX"][int(rng.choice(4, p=[0.45, 0.3, 0.2, 0.05]))]
        at = int(i * 45_000 / n + rng.integers(0, 4_000))  # roughly in order: some late records, not most
        out.append((int(rng.integers(0, PARTITIONS)), i, at, amount, country, f"c{int(rng.integers(0, 60))}"))
    return out


def feed(worker: StreamTime, df: pl.DataFrame, parts: np.ndarray, offs: np.ndarray, internal: Topic) -> None:
    p = worker.plan
    report = p.contract.validate(df)
    conformed = compile_plan(p.contract).conform(df)
    out = worker.process(report, conformed, parts, offs, np.zeros(len(offs), dtype=np.int64), now_ms=NOW)
    for rec in out.records:
        internal.send(record_key(rec), encode(rec))


def run(rows: list[tuple], size: int, crash_at: int | None = None) -> list[WindowPartial]:
    """Two workers (partitions 0-1 and 2-3), batches of ``size``; worker a crashes after batch ``crash_at`` and
    its successor replays that batch; then every window is merged from the internal topic's records."""
    _, monitor, plan = drifting()
    internal, changelog = Topic(), Topic()
    owners = {0: "a", 1: "a", 2: "b", 3: "b"}
    workers = {n: StreamTime(plan, CONFIG, PARTITIONS, profile=monitor.profile) for n in "ab"}
    for part, owner in owners.items():
        workers[owner].assign(part, NOW)
    todo = batches(rows, size)
    skip_a = -1
    for i, (df, parts, offs) in enumerate(todo):
        for name, w in workers.items():
            mine = np.flatnonzero([owners[int(x)] == name for x in parts])
            if len(mine) and not (name == "a" and i == skip_a):
                feed(w, df[mine], parts[mine], offs[mine], internal)
        if i == crash_at:  # a restarts and replays batch i cut differently: together with batch i + 1
            workers["a"] = StreamTime(plan, CONFIG, PARTITIONS, profile=monitor.profile)
            for part in (0, 1):
                restore(workers["a"], part, internal, changelog)
            if i + 1 < len(todo):
                nxt = todo[i + 1]
                df, parts, offs = (
                    pl.concat([df, nxt[0]]),
                    np.concatenate([parts, nxt[1]]),
                    np.concatenate([offs, nxt[2]]),
                )
            mine = np.flatnonzero([owners[int(x)] == "a" for x in parts])
            if len(mine):
                feed(workers["a"], df[mine], parts[mine], offs[mine], internal)  # the replayed part: counted once
            skip_a = i + 1
    for w in workers.values():
        for hb in w.heartbeats(NOW):
            internal.send(record_key(hb), encode(hb))
    merger = WindowMerger(plan.contract.id, plan.schema_obj.name, plan.schema_obj.topic, LATENESS_MS, CONFIG.idle_ms)
    for _, value in internal.log:
        rec = decode(value)
        assert not isinstance(rec, Undecodable), rec
        merger.feed(rec)
    assert merger.stats.overlapping == 0
    return merger.due(NOW + CONFIG.idle_ms)


def truth(window: pl.DataFrame) -> object:
    _, monitor, plan = drifting()
    return monitor.profile(compile_plan(plan.contract).conform(window))


@pytest.mark.parametrize(("seed", "size", "crash_at"), [(0, 7, None), (1, 23, 2), (2, 64, 0), (3, 1, 40)])
def test_window_profile_merged_over_batches_partitions_and_workers_equals_one_pass(
    seed: int, size: int, crash_at: int | None
) -> None:
    rows = records(seed, 300)
    windows = run(rows, size, crash_at)
    expected = oracle([(p, i, t, a, c) for p, i, t, a, c, _ in rows])
    by_id = {r[1]: r[5] for r in rows}  # the oracle's frames lack the codes: added by id
    assert {w.key.start_ms for w in windows if w.rows} == set(expected)
    checked = 0
    for w in windows:
        if not w.rows:
            assert w.profile is None
            continue
        window = expected[w.key.start_ms]
        window = window.with_columns(pl.Series("code", [by_id[i] for i in window.get_column("id")]))
        assert w.profile is not None and w.rows == window.height
        assert_same(w.profile, truth(window))  # counts, bins, categories: bit-identical; moments within 1e-9
        checked += 1
    assert checked == len(expected) >= 4


def test_partial_codec_carries_the_profile_and_refuses_garbage() -> None:
    windows = run(records(5, 120), 13)
    part = next(w for w in windows if w.rows)
    back = decode(encode(Partial(3, part)))
    assert isinstance(back, Partial) and back.partial.same(part) and back.partial.profile == part.profile
    # non-finite numbers survive (orjson would write them as null)
    p = part.profile
    assert p is not None
    odd = replace(p, fields={**p.fields, "amount": replace(p.numeric("amount"), above_gap=math.inf)})
    again = decode(encode(Partial(3, replace(part, profile=odd))))
    assert isinstance(again, Partial) and again.partial.profile == odd
    # garbage in the profile entry: the record is undecodable (logged and skipped by the caller), never a crash
    raw = encode(Partial(3, part))

    def mangled(change: object) -> bytes:
        body = zlib.decompress(raw[6:]) if raw[5] & 1 else raw[6:]
        size = int.from_bytes(body[:4], "big")
        head = orjson.loads(body[4 : 4 + size])
        change(head)  # type: ignore[operator]
        new = orjson.dumps(head)
        return _frame(1, len(new).to_bytes(4, "big") + new + body[4 + size :])

    for change in (
        lambda h: h.update(profile_format=2),
        lambda h: h["profile"].update(rows=h["counts"][1] + 1),
        lambda h: h["profile"].update(contract="urn:other@1.0.0"),
        lambda h: h["profile"]["fields"]["amount"].update(hist="x"),
        lambda h: h["profile"]["fields"]["amount"].update(count=-1),
    ):
        assert isinstance(decode(mangled(change)), Undecodable)
    assert isinstance(decode(mangled(lambda h: None)), Partial)  # the mangler itself keeps a record readable


def test_merge_keeps_the_union_and_never_raises_on_other_bins() -> None:
    windows = [w for w in run(records(6, 150), 11) if w.rows]
    a, b = windows[0], replace(windows[1], key=windows[0].key)
    b = replace(b, offsets={9: ((0, b.records),)})  # disjoint records of the same window
    assert a.profile is not None and b.profile is not None
    assert merge(a, b).profile == merge_profiles([a.profile, b.profile])
    assert merge(a, replace(b, profile=None)).profile == a.profile
    other = replace(b, profile=replace(b.profile, spec_id="other-bins"))
    kept = merge(a, other).profile  # a replaced reference: the larger is kept, no exception
    assert kept in (a.profile, other.profile)


def test_finalized_windows_get_drift_events_with_insufficient_data_never_an_alarm() -> None:
    contract, monitor, plan = drifting()
    calm = [w for w in run(records(7, 900), 50) if w.rows]
    shifted = [w for w in run(records(7, 900, shift=25.0), 50) if w.rows]
    flagged = 0
    for w in calm:  # the reference's distribution: a KS test at p < 0.05 may flag one window by chance
        v = finalize(plan, w, monitor)
        assert v.drift is not None and v.drift.profile.rows == w.rows
        verdict = v.drift.report.field("amount").verdict
        assert verdict in (Verdict.OK, Verdict.DRIFT)
        flagged += verdict is Verdict.DRIFT
    assert len(calm) == 5 and flagged <= 1
    for w in shifted:
        v = finalize(plan, w, monitor)
        assert v.drift is not None and v.drift.report.field("amount").verdict is Verdict.DRIFT
        [event] = window_drift_events(contract, v)
        validate_event(event)
        data = event_data(event)
        assert data["records"] == w.rows and "amount" in data["drifted"]
        assert data["reference"]["sha256"] == monitor.reference.sha256
        assert event.get_extension("severity") == "warning"
    # a window of 5 rows: no verdict on any field, not a false alarm
    tiny = next(w for w in run(records(8, 40), 5) if 0 < w.rows < monitor.config.min_count)
    v = finalize(plan, tiny, monitor)
    assert v.drift is not None
    assert {f.verdict for f in v.drift.report.fields} == {Verdict.INSUFFICIENT_DATA}
    event = distribution_drift(contract, v)
    assert event is not None and event.get_extension("severity") == "info" and event_data(event)["drifted"] == []
    # a window with no decoded row (only dead letters): judged on the empty profile
    empty = finalize(plan, replace(tiny, rows=0, valid=0, quarantined=0, profile=None), monitor)
    assert empty.drift is not None and empty.drift.profile.rows == 0
    assert {f.verdict for f in empty.drift.report.fields} == {Verdict.INSUFFICIENT_DATA}
    # deterministic ids: the same window published again has the same id, another window another one
    again = distribution_drift(contract, finalize(plan, tiny, monitor))
    assert again is not None and again.get_id() == event.get_id()
    same_window = distribution_drift(contract, finalize(plan, shifted[0], monitor))  # window 0 of another run
    assert same_window is not None and same_window.get_id() == event.get_id()
    other = distribution_drift(contract, finalize(plan, shifted[1], monitor))
    assert other is not None and other.get_id() != event.get_id()
    summary = window_summary(contract, finalize(plan, tiny, monitor), worker_id="w")
    assert summary.get_id() != event.get_id()
    assert prediction_confidence(contract, v) == []  # a feature contract: no confidence events
    assert finalize(plan, tiny).drift is None and window_drift_events(contract, finalize(plan, tiny)) == []


def test_heartbeats_and_partials_without_profiles_still_decode() -> None:
    _, _, plan = drifting()
    part = next(w for w in run(records(9, 60), 9) if w.rows)
    bare = replace(part, profile=None)
    back = decode(encode(Partial(0, bare)))
    assert isinstance(back, Partial) and back.partial.profile is None and back.partial.same(bare)
    hb = Heartbeat(plan.contract.id, "orders", "orders.v1", 0, 4, PartitionClock(1, 2), 3)
    assert decode(encode(hb)) == hb


def test_a_corrupt_or_foreign_reference_refuses_the_worker_at_start(tmp_path: Path) -> None:
    from streams.contracts.loader import load_contract
    from streams.errors import ProfileError
    from streams.settings import Settings
    from streams.windows.worker import WindowsStage

    from .drift_helpers import write_contract

    path = write_contract(tmp_path)
    contract = load_contract(path)
    settings = Settings(bootstrap_servers="memory:9092", app_id="qs-test", web_port=0)
    stage = WindowsStage(contract, contract.schema(), settings)
    assert stage.monitor is not None and stage.stream.profile is not None  # profiling on
    (tmp_path / "ref.qsref").write_bytes(b"QSP\x01garbage")
    with pytest.raises(ProfileError, match="corrupt"):
        WindowsStage(load_contract(path), contract.schema(), settings)
    other = tmp_path / "v2.yaml"
    other.write_text(path.read_text().replace("version: 1.2.0", "version: 1.3.0"))
    write_contract(tmp_path)  # a fresh reference of version 1.2.0, now read by the 1.3.0 contract
    with pytest.raises(ProfileError, match="another version"):
        c2 = load_contract(other)
        WindowsStage(c2, c2.schema(), settings)
