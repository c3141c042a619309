"""The hot path's Kafka client: confluent-kafka (librdkafka) next to aiokafka, consume and produce, same broker.

    .venv/bin/python benchmarks/bench_clients.py [--records 100000] [--partitions 4] [--runs 5] [--gate-rate R]

Needs ``confluent-kafka`` (the ``bench`` extra). Uses the broker in ``KAFKA_BOOTSTRAP_SERVERS``, else starts one
(``streams.dev.broker``). Pre-produces ``--records`` 671-byte feature records
(``streams.testing.generate_feature_records``, as ``bench_worker.py`` does) on ``--partitions`` partitions, then,
``--runs`` times in this one process, alternating which client goes first:

* consume: a fresh consumer, the partitions assigned (no group join, whose delays differ between clients), reads
  the ``--records`` from the beginning in batches of ``--batch`` (aiokafka ``getmany(max_records=...)``;
  confluent ``Consumer.consume(num_messages=...)``), touching each value (no decode: the client's own cost);
* produce: ``--records`` records (the same values and keys) with ``acks=all`` and an idempotent producer,
  ``linger.ms`` 5 and 1 MiB batches, until all are acknowledged (aiokafka per-partition
  ``create_batch``/``send_batch`` as the worker forwards, and per-record ``send``; confluent ``produce`` +
  ``poll(0)`` + ``flush``).

Rates are timed from the client's creation (consume: librdkafka prefetches in its own threads, so timing from
the first batch would flatter it) or the first record handed over (produce) to the last record read or
acknowledged; CPU is the process's user+system time over the same span (librdkafka's own threads included).
Prints medians, the confluent/aiokafka ratios and CPU microseconds per record. With ``--gate-rate`` (the
``gate`` msg/s of ``bench_worker.py`` in the same session) it prints the most the worker's gate throughput
could gain if the client's CPU per record went from aiokafka's to librdkafka's and nothing else changed
(Amdahl: gate time per record minus the consume+produce CPU saved).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

Values = list[tuple[bytes, bytes]]


def cpu() -> float:
    return time.process_time()  # every thread of the process: librdkafka's and aiokafka's included


# --- consume ---------------------------------------------------------------------------------------


async def aiokafka_consume(
    bootstrap: str, topic: str, partitions: int, records: int, batch: int
) -> tuple[float, float]:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    t0, c0 = time.perf_counter(), cpu()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20, fetch_max_bytes=64 << 20,
    )  # fmt: skip
    await consumer.start()
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    seen, size = 0, 0
    try:
        while seen < records:
            polled = await consumer.getmany(max_records=batch, timeout_ms=200)
            for msgs in polled.values():
                seen += len(msgs)
                for m in msgs:
                    size += len(m.value)
        return time.perf_counter() - t0, cpu() - c0
    finally:
        await consumer.stop()


def confluent_consume(bootstrap: str, topic: str, partitions: int, records: int, batch: int) -> tuple[float, float]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    t0, c0 = time.perf_counter(), cpu()
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"bc-{uuid.uuid4().hex}", "enable.auto.commit": False,
        "max.partition.fetch.bytes": 4 << 20, "fetch.max.bytes": 64 << 20,
    })  # fmt: skip
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    seen, size = 0, 0
    try:
        while seen < records:
            msgs = consumer.consume(num_messages=batch, timeout=0.2)
            for m in msgs:
                if m.error() is not None:
                    continue
                seen += 1
                size += len(m.value() or b"")
        return time.perf_counter() - t0, cpu() - c0
    finally:
        consumer.close()


# --- produce ---------------------------------------------------------------------------------------


async def aiokafka_produce(
    bootstrap: str, topic: str, values: Values, partitions: int, batches: bool
) -> tuple[float, float]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5,
                                max_batch_size=1 << 20)  # fmt: skip
    await producer.start()
    await producer.partitions_for(topic)
    try:
        t0, c0 = time.perf_counter(), cpu()
        futures: list[Any] = []
        if batches:  # the worker's forwarding: one record batch per partition at a time
            for p in range(partitions):
                builder = producer.create_batch()
                for key, value in values[p::partitions]:
                    if builder.append(key=key, value=value, timestamp=None) is None:
                        futures.append(await producer.send_batch(builder, topic, partition=p))
                        builder = producer.create_batch()
                        builder.append(key=key, value=value, timestamp=None)
                futures.append(await producer.send_batch(builder, topic, partition=p))
        else:
            for i, (key, value) in enumerate(values):
                futures.append(await producer.send(topic, value=value, key=key, partition=i % partitions))
        await asyncio.gather(*futures)
        return time.perf_counter() - t0, cpu() - c0
    finally:
        await producer.stop()


def confluent_produce(bootstrap: str, topic: str, values: Values, partitions: int) -> tuple[float, float]:
    from confluent_kafka import KafkaException, Producer

    errors: list[Any] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({
        "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
        "batch.size": 1 << 20, "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1 << 20,
        "delivery.report.only.error": True,  # the worker needs a batch acknowledged, not a callback per record
    })  # fmt: skip
    producer.list_topics(topic, timeout=10)
    t0, c0 = time.perf_counter(), cpu()
    for i, (key, value) in enumerate(values):
        while True:
            try:
                producer.produce(topic, value=value, key=key, partition=i % partitions, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    if producer.flush(60) != 0:
        raise KafkaException("confluent producer: records left undelivered after 60 s")
    elapsed, used = time.perf_counter() - t0, cpu() - c0
    if errors:
        raise KafkaException(f"confluent producer: {len(errors)} delivery errors, first {errors[0]}")
    return elapsed, used


# --- main ---------------------------------------------------------------------------------------------


def table(title: str, rows: dict[str, list[tuple[float, float]]], records: int, base: str) -> dict[str, float]:
    """Median msg/s and CPU us/record per client; prints one markdown table."""
    rate = {k: statistics.median(records / e for e, _ in v) for k, v in rows.items()}
    us = {k: statistics.median(c / records * 1e6 for _, c in v) for k, v in rows.items()}
    print(f"\n{title}\n| {'client':<24} | {'msg/s (median)':>14} | {'runs (msg/s)':<40} | {'vs ' + base:>16} | "
          f"{'CPU us/rec':>10} |")  # fmt: skip
    print(f"|{'-' * 26}|{'-' * 16}|{'-' * 42}|{'-' * 18}|{'-' * 12}|")
    for k, v in rows.items():
        runs = ", ".join(f"{records / e / 1000:.0f}k" for e, _ in v)
        print(f"| {k:<24} | {rate[k]:>14,.0f} | {runs:<40} | {rate[k] / rate[base]:>15.2f}x | {us[k]:>10.1f} |")
    return us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=5000, help="records per consume call")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gate-rate", type=float, help="bench_worker.py gate msg/s in this session")
    args = parser.parse_args()
    import logging

    import orjson
    from bench_worker import preproduce

    from streams.dev.broker import kafka_bootstrap
    from streams.testing import generate_feature_records

    logging.basicConfig(level=logging.WARNING)
    with kafka_bootstrap() as bootstrap:
        topic = f"bench-clients-{uuid.uuid4().hex[:8]}"
        size = asyncio.run(preproduce(bootstrap, topic, args.records, args.partitions))
        faults = {"out_of_range": 0.005, "invalid_enum": 0.005}
        generated = generate_feature_records(args.records, seed=0, faults=faults).records
        values = [(str(i).encode(), orjson.dumps(r)) for i, r in enumerate(generated)]
        out = f"{topic}.copy"  # created by preproduce with the same partitions
        print(f"broker {bootstrap}; {args.records:,} records of {size:.0f} bytes (mean) on {args.partitions} "
              f"partitions; batch {args.batch}; {args.runs} alternating runs; {os.cpu_count()} CPUs")  # fmt: skip
        consume: dict[str, Callable[[], tuple[float, float]]] = {
            "aiokafka getmany": lambda: asyncio.run(
                aiokafka_consume(bootstrap, topic, args.partitions, args.records, args.batch)
            ),
            "confluent consume": lambda: confluent_consume(bootstrap, topic, args.partitions, args.records, args.batch),
        }
        produce: dict[str, Callable[[], tuple[float, float]]] = {
            "aiokafka send_batch": lambda: asyncio.run(
                aiokafka_produce(bootstrap, out, values, args.partitions, batches=True)),
            "aiokafka send": lambda: asyncio.run(
                aiokafka_produce(bootstrap, out, values, args.partitions, batches=False)),
            "confluent produce": lambda: confluent_produce(bootstrap, out, values, args.partitions),
        }  # fmt: skip
        got: dict[str, list[tuple[float, float]]] = {k: [] for k in (*consume, *produce)}
        for run in range(args.runs):
            for group in (consume, produce):
                names = list(group)
                for name in names if run % 2 == 0 else names[::-1]:
                    got[name].append(group[name]())
    c = table("consume (no decode)", {k: got[k] for k in consume}, args.records, "aiokafka getmany")
    p = table("produce (acks=all, idempotent)", {k: got[k] for k in produce}, args.records, "aiokafka send_batch")
    saved = (c["aiokafka getmany"] - c["confluent consume"]) + (p["aiokafka send_batch"] - p["confluent produce"])
    aio, conf = c["aiokafka getmany"] + p["aiokafka send_batch"], c["confluent consume"] + p["confluent produce"]
    print(f"\nCPU per record, consume + produce: aiokafka {aio:.1f} us, confluent {conf:.1f} us: "
          f"{saved:+.1f} us saved per record")  # fmt: skip
    if args.gate_rate:
        gate_us = 1e6 / args.gate_rate
        bound = gate_us / max(1e-9, gate_us - saved)
        print(f"gate {args.gate_rate:,.0f} msg/s = {gate_us:.1f} us/record; with librdkafka's client CPU at best "
              f"{gate_us - saved:.1f} us/record: at most {bound:.2f}x (adoption threshold 1.5x)")  # fmt: skip


if __name__ == "__main__":
    main()
