"""Partials, heartbeats and closed markers round-trip; garbage decodes to a reason, never an exception."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.windows.clock import PartitionClock
from streams.windows.codec import MAGIC, Closed, Heartbeat, Partial, Undecodable, decode, encode, record_key
from streams.windows.partial import RuleTally, ValueCounts, WindowKey, WindowPartial

KEY = WindowKey("urn:c", "1.0.0", "orders", "orders.v1", 10_000, 20_000)


def partial(n: int = 3) -> WindowPartial:
    hashes = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(2**40)
    return WindowPartial(
        KEY, "a" * 64, 10, 9, 7, 2, 1, 3, 1,
        rules={"amount:minimum": RuleTally(2), "countries": RuleTally(1, 4, "boom")},
        values={"code_duplicates": ValueCounts(hashes, np.full(n, 2, dtype=np.int64), 1)},
        aggregates={"big_share": (("count", "sum"), (9, 2.5)), "m": (("min",), (None,))},
        evidence={"amount:minimum": ((0, 4), (1, 2))},
        offsets={0: ((0, 5), (9, 12)), 2: ((3, 3),)},
    )  # fmt: skip


def test_records_round_trip() -> None:
    for n in (0, 3, 2000):  # 2000 values: the body is compressed
        p = partial(n)
        got = decode(encode(Partial(4, p)))
        assert isinstance(got, Partial) and got.partition == 4 and got.partial.same(p)
    hb = Heartbeat("urn:c", "orders", "orders.v1", 2, 6, PartitionClock(123, 456), 789)
    assert decode(encode(hb)) == hb
    closed = Closed("urn:c", "orders", "orders.v1", 40_000)
    assert decode(encode(closed)) == closed
    assert record_key(Partial(4, partial())) != record_key(Partial(5, partial()))


def test_compression_makes_value_counts_compact() -> None:
    raw = encode(Partial(0, partial(10_000)))
    assert len(raw) < 10_000 * 16  # 8-byte hash + 8-byte count per value, before compression


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "no QSW header"),
        (b"", "no QSW header"),
        (b"garbage!", "no QSW header"),
        (MAGIC + bytes((2, 1, 0)) + b"{}", "format version 2"),
        (MAGIC + bytes((1, 9, 0)) + b"{}", "unknown stream-time record kind 9"),
        (MAGIC + bytes((1, 2, 0)) + b"{not json", "corrupt"),
        (MAGIC + bytes((1, 2, 1)) + b"not zlib", "corrupt"),
        (MAGIC + bytes((1, 1, 0)) + b"\x00\x00\x00\x02{}", "corrupt"),
    ],
)
def test_garbage_decodes_to_a_reason(value: bytes | None, reason: str) -> None:
    got = decode(value)
    assert isinstance(got, Undecodable) and reason in got.reason


def test_wrong_types_and_bad_ranges_are_refused() -> None:
    raw = encode(Partial(0, partial()))
    body = bytearray(raw)
    tampered = bytes(body).replace(b'"partition":0', b'"partition":-1')
    assert isinstance(decode(tampered), Undecodable)
    p = partial()
    bad = WindowPartial(KEY, p.contract_sha256, offsets={0: ((5, 2),)})
    assert isinstance(decode(encode(Partial(0, bad))), Undecodable)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 255), st.integers(0, 255))
def test_random_bytes_never_raise(noise: bytes, kind: int, flags: int) -> None:
    for value in (noise, MAGIC + bytes((1, kind % 4, flags % 2)) + noise):
        assert isinstance(decode(value), (Partial, Heartbeat, Closed, Undecodable))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_truncated_and_flipped_partials_never_raise(data: st.DataObject) -> None:
    raw = bytearray(encode(Partial(1, partial(5))))
    cut = data.draw(st.integers(0, len(raw)))
    assert decode(bytes(raw[:cut])) is not None
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    assert isinstance(decode(bytes(raw)), (Partial, Undecodable))
