"""Bulk decode against per-message decode in the same run, and the readers the choice was made among.

Run: ``.venv/bin/python benchmarks/bench_decode.py [--sizes 1250 5000] [--repeat 21] [--candidates]``

**Bulk vs per message** (the default): :class:`streams.formats.decoder.Decoder` (bulk read of the provable
messages, :mod:`streams.formats.bulk`) against :class:`streams.formats.decoder.MessageDecoder` (orjson per
message, what the worker did before; the reference and the bulk decoder's fallback), on the same messages,
**alternating** one call of each per round; median wall and CPU ms per batch and their ratios (> 1: bulk faster).
Data: card feature records (``contracts/card_transactions.odcs.yaml``, ~670 bytes, 24 fields) and prediction
records (``contracts/fraud_predictions.odcs.yaml``, ~290 bytes, 9 fields), clean, with 1% wrong-typed values
(``"12"``/``12``/``true`` in the wrong field: proven rows and per-message rows mixed), with 1% values that are not
JSON (truncated: the bulk read fails and is bisected), and written by ``json.dumps`` with its default spaces (no
row can be proven: the bulk reader's worst case, then its cooldown).

Two runs on the shared 2-vCPU box (load average 8-10 from other work: wall times swing by 2-3x, CPU times are
steadier; medians of 21 alternating rounds each; ratio = per message / bulk, > 1: bulk cheaper; the second run
is after the last changes to the bulk path)::

    data                         rows bytes | wall ms per message  | wall ms bulk   | wall ratio  | CPU ratio
    card / clean                1250   671 |     7.7 / 16.8     |    7.0 / 13.4   | 1.09 / 1.25 | 1.10 / 1.03
    card / clean                5000   671 |   120.5 / 121.0    |   55.7 / 53.6   | 2.16 / 2.26 | 1.43 / 1.47
    card / 1% types             1250   671 |    39.2 / 31.5     |   18.4 / 19.2   | 2.13 / 1.64 | 1.20 / 1.34
    card / 1% types             5000   671 |   305.7 / 311.5    |  102.2 / 136.2  | 2.99 / 2.29 | 1.47 / 1.67
    card / 1% not JSON          1250   668 |    19.2 / 16.5     |   22.6 / 22.5   | 0.85 / 0.74 | 1.12 / 1.05
    card / 1% not JSON          5000   668 |   215.8 / 172.0    |  146.0 / 115.4  | 1.48 / 1.49 | 1.17 / 1.07
    card / spaces               1250   718 |    59.9 / 25.7     |   54.6 / 34.7   | 1.10 / 0.74 | 0.57 / 0.59
    card / spaces               5000   718 |   185.7 / 135.8    |  263.7 / 257.0  | 0.70 / 0.53 | 0.58 / 0.61
    predictions / clean         1250   290 |     8.0 / 5.4      |   18.9 / 4.7    | 0.42 / 1.14 | 1.24 / 1.10
    predictions / clean         5000   290 |    46.3 / 79.1     |   41.2 / 32.2   | 1.12 / 2.45 | 1.52 / 1.48
    predictions / 1% types      1250   290 |    12.0 / 13.3     |   10.5 / 13.7   | 1.15 / 0.97 | 0.99 / 1.08
    predictions / 1% types      5000   290 |   101.8 / 160.6    |   43.7 / 48.9   | 2.33 / 3.28 | 1.57 / 1.61
    predictions / 1% not JSON   1250   288 |     6.9 / 8.7      |    7.2 / 10.0   | 0.96 / 0.87 | 0.96 / 0.93
    predictions / 1% not JSON   5000   288 |    20.8 / 69.4     |   20.0 / 51.0   | 1.04 / 1.36 | 1.05 / 1.21
    predictions / spaces        1250   307 |     6.9 / 9.4      |   13.2 / 20.2   | 0.52 / 0.46 | 0.53 / 0.54
    predictions / spaces        5000   307 |    46.9 / 84.4     |   56.7 / 106.4  | 0.83 / 0.79 | 0.59 / 0.60

In CPU, the bulk path is 1.4-1.7x cheaper on 5000-message batches, clean or with 1% wrong types, and 1.0-1.3x
on 1250-message batches (what the worker decodes: one batch per partition of a 5000-record poll over 4
partitions). Single-threaded profiles: the bulk read costs about 2.2 µs of CPU per 671-byte record, its proof
(``write_ndjson`` and one comparison) about 1 µs, the candidate tests about 0.5 µs, against about 7 µs for the
per-message decoder; each call also pays about 1 ms of fixed cost, so below ~250 messages the per-message
decoder is cheaper (``MIN_BATCH``). ``spaces`` is the worst case of each call
(every read wasted); the worker then reads per message for ``COOLDOWN`` batches.

``--candidates`` adds the readers measured when the per-message decoder was first chosen (table below, from
that time): they were lenient or fell back whole, and the verdict was per message; the bulk decoder above
keeps ``pl.read_ndjson(schema=)``'s speed and makes it exact by proving each row instead of trusting it::

    data          rows  decoder                                 median ms     rows/s  ratio
    features      5000  orjson + columns (Decoder)                   20.9    238,938   1.00
    features      5000  orjson + pl.from_dicts (lenient)             22.9    218,055   0.91
    features      5000  pl.read_ndjson schema= + fallback            10.7    466,274   1.95
    features      5000  pl.read_ndjson strict (Categorical)          35.0    142,911   0.60
    features      5000  pyarrow.json strict + fallback               16.6    300,512   1.26
    features    100000  orjson + columns (Decoder)                  633.6    157,816   1.00
    features    100000  pl.read_ndjson schema= + fallback           193.8    515,956   3.27
    features    100000  pyarrow.json strict + fallback              251.9    397,011   2.52
    predictions   5000  orjson + columns (Decoder)                    9.8    510,145   1.00
    predictions   5000  pl.read_ndjson schema= + fallback             5.1    979,689   1.92
    predictions   5000  pyarrow.json strict + fallback                7.4    676,992   1.33
    predictions 100000  orjson + columns (Decoder)                  300.4    332,866   1.00
    predictions 100000  pl.read_ndjson schema= + fallback            58.2  1,718,655   5.16
    predictions 100000  pyarrow.json strict + fallback              113.0    885,269   2.66
    features/1%   5000  orjson + columns (Decoder)                   32.2    155,097   1.00
    features/1%   5000  pl.read_ndjson schema= + fallback            34.4    145,527   0.94
    features/1%   5000  pyarrow.json strict + fallback               35.9    139,158   0.90
    features/1% 100000  orjson + columns (Decoder)                  866.5    115,403   1.00
    features/1% 100000  pyarrow.json strict + fallback             1129.2     88,561   0.77

(``Decoder`` in this old table is today's ``MessageDecoder``.)
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.json as pj

from streams.contracts.loader import load_contract
from streams.contracts.model import SchemaObject
from streams.formats.decoder import Decoder, MessageDecoder
from streams.pipeline.records import Message
from streams.testing import generate_feature_records, generate_prediction_records, make_messages

ROOT = Path(__file__).resolve().parents[1]
Candidate = Callable[[list[bytes]], pl.DataFrame]


def wire_schema(schema: SchemaObject) -> dict[str, pl.DataType]:
    def wire(dt: pl.DataType) -> pl.DataType:
        if dt.is_integer():
            return pl.Int64()
        if dt.is_float():
            return pl.Float64()
        return pl.Boolean() if dt == pl.Boolean else pl.String()

    return {f.name: wire(f.dtype) for f in schema.fields}


def candidates(schema: SchemaObject) -> dict[str, Candidate]:
    wire = wire_schema(schema)
    decoder = MessageDecoder(schema)
    arrow_schema = pl.DataFrame(schema=wire).to_arrow().schema
    strict = {k: (pl.Categorical() if v == pl.String else v) for k, v in wire.items()}
    head = orjson.dumps(dict.fromkeys(wire))

    messages: dict[int, list[Message]] = {}  # built once per input, outside the timing

    def orjson_columns(values: list[bytes]) -> pl.DataFrame:
        batch = messages.get(id(values))
        if batch is None:
            batch = messages[id(values)] = make_messages(values, schema.topic)
        return decoder.decode(batch).frame

    def fallback(values: list[bytes]) -> pl.DataFrame:  # per-message isolation after a failed batch read
        return orjson_columns(values)

    def from_dicts(values: list[bytes]) -> pl.DataFrame:
        try:
            return pl.from_dicts([orjson.loads(v) for v in values], schema=wire, strict=True)
        except Exception:
            return fallback(values)

    def ndjson_schema(values: list[bytes]) -> pl.DataFrame:
        try:
            return pl.read_ndjson(io.BytesIO(b"\n".join(values)), schema=wire)
        except Exception:
            return fallback(values)

    def ndjson_strict(values: list[bytes]) -> pl.DataFrame:
        try:
            buf = io.BytesIO(b"\n".join([head, *values]))
            df = pl.read_ndjson(buf, schema_overrides=strict, infer_schema_length=None).slice(1)
            return df.select(pl.col(k).cast(v) for k, v in wire.items())
        except Exception:
            return fallback(values)

    def pyarrow_strict(values: list[bytes]) -> pl.DataFrame:
        try:
            options = pj.ParseOptions(explicit_schema=arrow_schema, unexpected_field_behavior="error")
            table = pj.read_json(pa.py_buffer(b"\n".join(values)), parse_options=options)
            df = pl.from_arrow(table)
            assert isinstance(df, pl.DataFrame)
            return df
        except Exception:
            return fallback(values)

    out: dict[str, Candidate] = {
        "orjson + columns (MessageDecoder)": orjson_columns,
        "orjson + pl.from_dicts (lenient)": from_dicts,
        "pl.read_ndjson schema= + fallback": ndjson_schema,
        "pl.read_ndjson strict (Categorical)": ndjson_strict,
        "pyarrow.json strict + fallback": pyarrow_strict,
    }
    try:
        import msgspec  # type: ignore[import-not-found]
    except ImportError:
        print("msgspec: not installed (not a dependency), skipped")
    else:
        decode_many = msgspec.json.Decoder(list[dict])

        def msgspec_dicts(values: list[bytes]) -> pl.DataFrame:
            return pl.from_dicts(decode_many.decode(b"[" + b",".join(values) + b"]"), schema=wire)

        out["msgspec + pl.from_dicts"] = msgspec_dicts
    return out


def median_seconds(fn: Candidate, values: list[bytes], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(values)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def faulty_values(label: str, n: int) -> tuple[str, list[bytes]]:
    """The values of one data set: ``card`` / ``predictions``, then ``clean``, ``1% types``, ``1% not JSON`` or
    ``spaces`` (every value written with ``json.dumps``' default separators)."""
    kind, variant = label.split("/")
    generate = generate_feature_records if kind == "card" else generate_prediction_records
    faults = {"wrong_type": 0.01} if variant == "1% types" else None
    records = generate(n, seed=42, faults=faults).records
    if variant == "spaces":
        return kind, [json.dumps(r, ensure_ascii=False).encode() for r in records]
    values = [orjson.dumps(r) for r in records]
    if variant == "1% not JSON":
        values = [v[: len(v) // 2] if i % 100 == 37 else v for i, v in enumerate(values)]
    return kind, values


def compare(sizes: list[int], repeat: int) -> None:
    """Bulk vs per message, same messages, alternating calls; medians of wall and CPU (process) time and the
    per-message/bulk ratios (CPU time includes polars' threads: the cost on a shared machine)."""
    contracts = {"card": "card_transactions.odcs.yaml", "predictions": "fraud_predictions.odcs.yaml"}
    variants = ("clean", "1% types", "1% not JSON", "spaces")
    print(
        f"{'data':26} {'rows':>6} {'bytes':>5} | {'wall ms: message':>16} {'bulk':>6} {'ratio':>5} | "
        f"{'CPU ms: message':>15} {'bulk':>6} {'ratio':>5} | {'bulk CPU µs/row':>15}"
    )
    for kind, path in contracts.items():
        schema = load_contract(ROOT / "contracts" / path).schema()
        for variant in variants:
            for n in sizes:
                _, values = faulty_values(f"{kind}/{variant}", n)
                messages = make_messages(values, schema.topic)
                old, new = MessageDecoder(schema), Decoder(schema)
                old.decode(messages), new.decode(messages)  # warm up
                wall: dict[str, list[float]] = {"old": [], "new": []}
                cpu: dict[str, list[float]] = {"old": [], "new": []}
                for _ in range(repeat):
                    for name, dec in (("old", old), ("new", new)):
                        if new._bulk is not None:
                            new._bulk.cooldown = 0  # each call is judged alone: no cooldown from the last call
                        start, start_cpu = time.perf_counter(), time.process_time()
                        dec.decode(messages)
                        wall[name].append(time.perf_counter() - start)
                        cpu[name].append(time.process_time() - start_cpu)
                w_old, w_new = statistics.median(wall["old"]), statistics.median(wall["new"])
                c_old, c_new = statistics.median(cpu["old"]), statistics.median(cpu["new"])
                size = sum(map(len, values)) / n
                print(
                    f"{kind + ' / ' + variant:26} {n:>6} {size:>5.0f} | {w_old * 1e3:>16.1f} {w_new * 1e3:>6.1f} "
                    f"{w_old / w_new:>5.2f} | {c_old * 1e3:>15.1f} {c_new * 1e3:>6.1f} {c_old / c_new:>5.2f} | "
                    f"{c_new / n * 1e6:>15.2f}"
                )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_250, 5_000])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--candidates", action="store_true", help="also the readers compared in the first choice")
    args = parser.parse_args(argv)
    compare(args.sizes, args.repeat)
    if not args.candidates:
        return
    datasets = [
        ("features", "card_transactions.odcs.yaml", generate_feature_records, None),
        ("predictions", "fraud_predictions.odcs.yaml", generate_prediction_records, None),
        ("features/1%", "card_transactions.odcs.yaml", generate_feature_records, {"wrong_type": 0.01}),
    ]
    print(f"\n{'data':12} {'rows':>7}  {'decoder':40} {'median ms':>10} {'rows/s':>12} {'ratio':>6}")
    for label, path, generate, faults in datasets:
        schema = load_contract(ROOT / "contracts" / path).schema()
        for n in args.sizes:
            values = [orjson.dumps(r) for r in generate(n, seed=42, faults=faults).records]
            size = sum(map(len, values)) / n
            base = None
            for name, fn in candidates(schema).items():
                fn(values)  # warm up (and build the Decoder's messages once)
                seconds = median_seconds(fn, values, args.repeat if n < 50_000 else max(args.repeat // 2, 1))
                base = base or seconds
                print(
                    f"{label:12} {n:>7}  {name:40} {seconds * 1e3:>10.1f} {n / seconds:>12,.0f} {base / seconds:>6.2f}"
                )
            print(f"{'':12} {'':>7}  (mean record size {size:.0f} bytes)")


if __name__ == "__main__":
    main()
