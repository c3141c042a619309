"""The worker's hot path per batch, stage by stage, without a broker: where a gate/monitor worker's time goes.

    .venv/bin/python benchmarks/bench_hotpath.py [--batch 3333] [--batches 30] [--mode gate|monitor] [--json]
    .venv/bin/python benchmarks/bench_hotpath.py --baseline DIR [--rounds 3]   # old code in DIR vs this tree
    .venv/bin/python benchmarks/bench_hotpath.py --partitions 4 --stream-time [--baseline DIR]

One :class:`~streams.kafka.batches.BatchWorker` (the card contract, stream time off, batch events off, as in
``bench_worker.py``) runs its real path for one partition batch (``_prepare`` + ``_submit_poll`` of
:mod:`streams.kafka.polls`, as ``_cycle`` runs them) on batches of aiokafka ``ConsumerRecord`` objects, with an
:class:`~streams.kafka.aiokafka_transport.AIOKafkaTransport` whose producer is aiokafka's real ``BatchBuilder``
(records are serialised as for the wire; nothing is sent). Stages timed per batch:

* ``to_messages``: aiokafka records to pipeline messages;
* ``process``: ``Binding.process`` (decode, validate, output records and headers, quality events);
  ``decode_wall`` / ``validate_wall`` are its own wall-time measures of the first two (formats, validation);
* ``fit``: outputs checked against their topics' limits;
* ``send``: outputs appended to record batches (``BatchWorker._send``);
* ``observers``: ``on_batch_end`` (Prometheus metrics, health);
* ``handle``: the whole path of one partition batch, timed on its own: ``_prepare`` (process + fit) and
  ``_submit_poll`` (send + events + observers), or ``_handle`` on code from before them (a ``--baseline``);
* ``poll`` (``--partitions N``): the batch as one poll of N partitions (round-robin), as ``_cycle`` runs it:
  ``_prepare`` + ``_submit_poll`` (one decode and validation for the poll, outputs split per partition), or, on
  code without them (a ``--baseline`` from before), ``_handle`` per partition batch.

``--stream-time``: the binding has a stream-time stage (``WindowsStage``: event-time windows, stream uniqueness,
partials and changelog records, as ``qstreams worker`` installs it; the records it produces are sent like the
rest). The ``poll`` stage then runs on a second worker and binding, with a stage of its own, on fresh offsets;
``handle`` reads the batch ``process`` just read, so its stage takes it for a replay (compare ``process``).

Prints the median microseconds per record of each stage: CPU time of the process (polars' threads included),
steadier than wall time on a shared machine, except the ``_wall`` ones. With
``--baseline DIR`` (a checkout of older code, e.g. ``git worktree``/``git archive`` of a commit), each round runs
this script once under DIR and once under this tree, alternating, and prints the medians side by side with ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAGES = (
    "to_messages",
    "process",
    "decode_wall",
    "validate_wall",
    "fit",
    "send",
    "observers",
    "handle",
    "handle_wall",
    "poll",
    "poll_wall",
)


class _Producer:
    """aiokafka's own batch builder (the wire format is built), without a network."""

    def __init__(self, transactional: bool) -> None:
        from aiokafka.producer.message_accumulator import BatchBuilder

        self._builder, self._tx, self.batches = BatchBuilder, transactional, 0

    def create_batch(self) -> Any:
        return self._builder(1_048_576, 0, is_transactional=self._tx)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        batch._build()
        self.batches += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def send(self, topic: str, value: Any, key: Any = None, partition: Any = None, **kw: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class _Session:
    def __init__(self, producer: _Producer) -> None:
        self.producer = self.events = producer
        self.limits: dict[str, int] = {}
        self.consumer = None

    async def partition_count(self, topic: str) -> int:
        return 4

    async def max_message_bytes(self, topic: str) -> int:
        self.limits[topic] = 1_048_588
        return 1_048_588

    def stale(self, *topics: str) -> None: ...


async def measure(
    batch: int, batches: int, mode: str, partitions: int = 1, stream_time: bool = False
) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from aiokafka.structs import ConsumerRecord

    from streams.contracts.loader import load_contract
    from streams.kafka import aiokafka_transport as at
    from streams.kafka.batches import BatchWorker, tune_gc
    from streams.kafka.transport import TopicPartition
    from streams.pipeline.binding import Binding
    from streams.settings import Mode, Settings
    from streams.testing import generate_feature_records, make_messages

    contract = load_contract(ROOT / "contracts" / "card_transactions.odcs.yaml")
    schema = contract.schema(None)
    topic = schema.topic
    settings = Settings(mode=Mode(mode), batch_events=False, stream_time=False, web_port=0)
    transport = at.AIOKafkaTransport.__new__(at.AIOKafkaTransport)
    transport.settings = settings
    transport.session = _Session(_Producer(False))  # type: ignore[assignment]
    transport._listener = None
    transport._handing = {}  # what __init__ sets (the hand-over of closed batches, send_batch)

    def bound() -> Binding:
        b = Binding(contract, schema, settings)
        if stream_time:
            from streams.windows.worker import WindowsStage

            b.stages.append(WindowsStage(contract, schema, settings, plan=b.plan))  # as `install` adds it
        return b

    binding = bound()
    worker = BatchWorker(settings, [binding], worker_id="bench", transport=transport)
    poller = BatchWorker(settings, [bound()], worker_id="bench", transport=transport) if stream_time else worker
    tp = TopicPartition(topic, 0)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    worker._owned.update(tps)
    poller._owned.update(tps)
    faults = {"out_of_range": 0.005, "invalid_enum": 0.005}
    runs = []
    for i in range(batches + 1):
        records = generate_feature_records(batch, seed=i, faults=faults).records
        ms = make_messages(records, topic, start_offset=i * batch, key_field="event_id")
        runs.append([ConsumerRecord(m.topic, 0, m.offset, m.timestamp_ms, 0, m.key, m.value, None,
                                    len(m.key or b""), len(m.value or b""), ()) for m in ms])  # fmt: skip
    tune_gc()
    samples: dict[str, list[float]] = {s: [] for s in STAGES}
    clock = time.process_time  # CPU of the process (polars' threads too): steadier than wall time on a shared machine
    for i, crs in enumerate(runs):
        t0 = clock()
        messages = at.to_messages(crs)
        t1 = clock()
        result = binding.process(messages, worker_id="bench")
        t2 = clock()
        fitted = await worker.outputs.fit(result, messages)
        t3 = clock()
        await worker._send(tp, fitted)
        t4 = clock()
        worker.observers.on_batch_end(tp, binding, len(messages), fitted, 0)
        t5, w0 = clock(), time.perf_counter()
        if hasattr(worker, "_prepare"):  # one partition batch: processed alone (``_process``), then submitted
            await worker._submit_poll(await worker._prepare([(tp, messages)]), w0, reap=False)
        else:
            await worker._handle(tp, messages, w0)
        t6, w1 = clock(), time.perf_counter()
        worker._pending.clear()
        polled: dict[Any, list[Any]] = {t: [] for t in tps}  # the same records as one poll of N partitions
        for k, m in enumerate(messages):
            p = k % partitions
            polled[tps[p]].append(type(m)(m.topic, p, i * batch + k, m.value, m.key, m.headers, m.timestamp_ms))
        t7, w2 = clock(), time.perf_counter()
        if hasattr(poller, "_prepare"):
            await poller._submit_poll(await poller._prepare(list(polled.items())), w2, reap=False)
        else:
            for t, ms in polled.items():
                await poller._handle(t, ms, w2)
        t8, w3 = clock(), time.perf_counter()
        poller._pending.clear()
        if i == 0:
            continue  # warm-up
        per = 1e6 / len(crs)
        for name, seconds in (("to_messages", t1 - t0), ("process", t2 - t1), ("decode_wall", result.decode_seconds),
                              ("validate_wall", result.validate_seconds), ("fit", t3 - t2), ("send", t4 - t3),
                              ("observers", t5 - t4), ("handle", t6 - t5), ("handle_wall", w1 - w0),
                              ("poll", t8 - t7), ("poll_wall", w3 - w2)):  # fmt: skip
            samples[name].append(seconds * per)
    return {name: statistics.median(v) for name, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=3333, help="records per partition batch")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--mode", choices=("gate", "monitor"), default="gate")
    parser.add_argument("--partitions", type=int, default=1, help="the ``poll`` stage: partitions of one poll")
    parser.add_argument("--json", action="store_true", help="print one JSON line (used with --baseline)")
    parser.add_argument("--baseline", type=Path, help="a checkout of older code to run alternately with this tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream-time", action="store_true", help="a stream-time stage on the binding (see above)")
    args = parser.parse_args()
    if args.baseline is None:
        out = asyncio.run(measure(args.batch, args.batches, args.mode, args.partitions, args.stream_time))
        if args.json:
            print(json.dumps(out))
            return
        what = f"{args.mode}{', stream time' if args.stream_time else ''}, {args.batch} records per batch"
        print(f"{what} ({args.partitions} partitions in ``poll``), median of {args.batches} batches, µs per record")
        for name, us in out.items():
            print(f"  {name:<14} {us:8.2f}")
        return
    trees = {"baseline": args.baseline.resolve(), "this": ROOT}
    got: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            cmd = [sys.executable, str(Path(__file__).resolve()), "--json", "--batch", str(args.batch), "--batches",
                   str(args.batches), "--mode", args.mode, "--partitions", str(args.partitions),
                   *(["--stream-time"] if args.stream_time else [])]  # fmt: skip
            env = os.environ | {"PYTHONPATH": str(tree), "BENCH_HOTPATH_ROOT": str(tree)}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            got[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    what = f"{args.mode}{', stream time' if args.stream_time else ''}, {args.batch} records per batch"
    print(f"{what} ({args.partitions} partitions in ``poll``); µs per record, median of {args.rounds} alternating runs")
    print(f"| {'stage':<14} | {'baseline':>9} | {'this':>9} | {'ratio':>6} |")
    print(f"|{'-' * 16}|{'-' * 11}|{'-' * 11}|{'-' * 8}|")
    for stage in STAGES:
        old = statistics.median(r[stage] for r in got["baseline"])
        new = statistics.median(r[stage] for r in got["this"])
        print(f"| {stage:<14} | {old:>9.2f} | {new:>9.2f} | {new / old if old else float('nan'):>6.2f} |")


if __name__ == "__main__":
    if os.environ.get("BENCH_HOTPATH_ROOT"):
        ROOT = Path(os.environ["BENCH_HOTPATH_ROOT"])
    main()
