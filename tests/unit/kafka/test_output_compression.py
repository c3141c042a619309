"""The worker's producers compress their record batches with ``STREAMS_OUTPUT_COMPRESSION`` (zstd by default)."""

from __future__ import annotations

import asyncio

import cramjam
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka import codec as codec_module
from aiokafka.record.default_records import DefaultRecordBatch

from streams.errors import SettingsError
from streams.kafka.codecs import DEFAULT_LEVELS, current_levels
from streams.kafka.connection import producer_config
from streams.settings import Compression, Settings, load_settings

#: the codec id in a v2 record batch's attributes (the low three bits)
CODEC_ID = {Compression.NONE: 0, Compression.GZIP: 1, Compression.SNAPPY: 2, Compression.LZ4: 3, Compression.ZSTD: 4}


def _built_batch(settings: Settings, *, transactional: bool | None = None) -> DefaultRecordBatch:
    """One record batch as the worker's producer builds it for the wire, read back."""

    async def build() -> bytes:
        producer = AIOKafkaProducer(**producer_config(settings, "w1", transactional=transactional))
        builder = producer.create_batch()
        for i in range(50):
            value = b'{"event_id": "%d", "amount": 12.5, "merchant": "m-0001"}' % i
            builder.append(key=b"k", value=value, timestamp=None, headers=[("qstreams.contract", b"c")])
        builder.close()
        return bytes(builder._builder.build())

    return DefaultRecordBatch(asyncio.run(build()))


def test_outputs_are_zstd_compressed_by_default() -> None:
    settings = Settings(bootstrap_servers="b1:9092")
    assert settings.output_compression is Compression.ZSTD
    batch = _built_batch(settings)
    assert batch.compression_type == CODEC_ID[Compression.ZSTD]
    records = list(batch)
    assert len(records) == 50 and records[7].value == b'{"event_id": "7", "amount": 12.5, "merchant": "m-0001"}'
    assert list(records[0].headers) == [("qstreams.contract", b"c")]


@pytest.mark.parametrize("codec", list(Compression))
def test_every_codec_can_be_chosen_and_none_sends_plain_batches(codec: Compression) -> None:
    settings = Settings(bootstrap_servers="b1:9092", output_compression=codec, exactly_once=True)
    for transactional in (None, False):  # the outputs' producer and the events' producer
        batch = _built_batch(settings, transactional=transactional)
        assert batch.compression_type == CODEC_ID[codec]
        assert [r.key for r in batch] == [b"k"] * 50


def test_the_codec_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_OUTPUT_COMPRESSION", "none")
    assert producer_config(load_settings(), "w1")["compression_type"] is None
    monkeypatch.setenv("STREAMS_OUTPUT_COMPRESSION", "brotli")
    with pytest.raises(SettingsError, match=r"STREAMS_OUTPUT_COMPRESSION \(output_compression\)"):
        load_settings()


def _raw_batch(settings: Settings) -> bytes:
    async def build() -> bytes:
        producer = AIOKafkaProducer(**producer_config(settings, "w1"))
        builder = producer.create_batch()
        for i in range(200):
            builder.append(key=None, value=b'{"event_id": "%d", "amount": 12.5, "merchant": "m-0001"}' % i,
                           timestamp=1_700_000_000_000, headers=[])  # fmt: skip
        builder.close()
        return bytes(builder._builder.build())

    return asyncio.run(build())


def _uncompressed(raw: bytes) -> bytes:
    """The records section of ``raw`` decompressed, whatever its codec."""
    batch = DefaultRecordBatch(raw)
    codec = batch.compression_type
    body = raw[61:]
    return {
        0: lambda b: b,
        1: lambda b: __import__("gzip").decompress(b),
        3: lambda b: bytes(cramjam.lz4.decompress(b)),
        4: lambda b: bytes(cramjam.zstd.decompress(b)),
    }[codec](body)


@pytest.mark.parametrize(
    ("codec", "level", "expected_level"),
    [(Compression.ZSTD, None, 1), (Compression.ZSTD, 7, 7), (Compression.ZSTD, -3, -3), (Compression.LZ4, None, 1),
     (Compression.LZ4, 12, 12), (Compression.GZIP, None, 6), (Compression.GZIP, 1, 1)],
)  # fmt: skip
def test_batches_are_compressed_at_the_settings_level(
    codec: Compression, level: int | None, expected_level: int
) -> None:
    settings = Settings(bootstrap_servers="b1:9092", output_compression=codec, output_compression_level=level)
    raw = _raw_batch(settings)
    assert current_levels()[codec] == expected_level
    records = _uncompressed(raw)
    expected = {
        Compression.ZSTD: lambda d: bytes(cramjam.zstd.compress(d, level=expected_level)),
        Compression.LZ4: lambda d: codec_module.lz4_encode(d, level=expected_level),
        Compression.GZIP: lambda d: None,  # gzip embeds a timestamp: compared through the level's size below
    }[codec](records)
    if expected is not None:
        assert raw[61:] == expected
    else:
        import gzip

        assert abs(len(raw[61:]) - len(gzip.compress(records, compresslevel=expected_level))) <= 16
    assert [r.value for r in DefaultRecordBatch(raw)][3] == b'{"event_id": "3", "amount": 12.5, "merchant": "m-0001"}'


def test_the_level_follows_the_last_settings() -> None:
    _raw_batch(Settings(bootstrap_servers="b1:9092", output_compression_level=9))
    assert current_levels()[Compression.ZSTD] == 9
    _raw_batch(Settings(bootstrap_servers="b1:9092"))
    assert current_levels() == DEFAULT_LEVELS


@pytest.mark.parametrize(
    ("codec", "level", "message"),
    [(Compression.SNAPPY, 1, "snappy has no compression level"), (Compression.NONE, 3, "none has no compression level"),
     (Compression.ZSTD, 23, r"zstd level is -131072\.\.22"), (Compression.LZ4, 0, r"lz4 level is 1\.\.17"),
     (Compression.GZIP, 10, r"gzip level is 1\.\.9")],
)  # fmt: skip
def test_a_level_the_codec_cannot_take_is_refused(codec: Compression, level: int, message: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("STREAMS_OUTPUT_COMPRESSION", str(codec))
    monkeypatch.setenv("STREAMS_OUTPUT_COMPRESSION_LEVEL", str(level))
    with pytest.raises(SettingsError, match=rf"STREAMS_OUTPUT_COMPRESSION_LEVEL.*{message}"):
        load_settings()
