"""The worker's producers compress their record batches with ``STREAMS_OUTPUT_COMPRESSION`` (zstd by default)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import DefaultRecordBatch

from streams.errors import SettingsError
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
