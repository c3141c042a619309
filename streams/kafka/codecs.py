"""Compression levels of the record batches aiokafka's producers build.

aiokafka compresses with fixed levels (zstd 3, lz4 9, gzip 9) and has no setting for them: its record batch
builders call the module-level ``zstd_encode``, ``lz4_encode`` and ``gzip_encode`` of
``aiokafka.record.default_records`` (and of its compiled twin). :func:`use_levels` points those names at the
same encoders with the levels of :class:`~streams.settings.Settings`, for every producer of the process: the
levels are a property of the process, as aiokafka leaves no other place for them. The level changes the bytes a
batch compresses to, never what a consumer reads back. Measured (a 1 MB batch of card records, docs/scaling.md):
zstd 1 compresses 5.0× in 2.2 ms, zstd 3 4.8× in 3.1 ms; lz4 1 2.7× in 1.8 ms, lz4 9 3.3× in 15 ms.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from streams.settings import Compression, Settings

__all__ = ["DEFAULT_LEVELS", "current_levels", "use_levels"]

log = logging.getLogger("streams.kafka")

#: the level of each codec when ``STREAMS_OUTPUT_COMPRESSION_LEVEL`` is unset
DEFAULT_LEVELS: dict[Compression, int] = {Compression.ZSTD: 1, Compression.LZ4: 1, Compression.GZIP: 6}

#: the builders' modules: the pure-Python one and the compiled one aiokafka uses when it is built
_MODULES = ("aiokafka.record.default_records", "aiokafka.record._crecords.default_records")

_levels: dict[Compression, int] = dict(DEFAULT_LEVELS)


def current_levels() -> dict[Compression, int]:
    """The levels the process's producers compress with (a copy)."""
    return dict(_levels)


def use_levels(settings: Settings) -> None:
    """Compress the process's output batches at ``settings``' level of its codec (the default levels for the
    others), and make aiokafka's builders read the levels from here. Idempotent; the last call wins."""
    _levels.update(DEFAULT_LEVELS)
    if settings.output_compression_level is not None:
        _levels[settings.output_compression] = settings.output_compression_level
    from aiokafka import codec

    encoders: dict[str, Callable[[Any], bytes]] = {
        "zstd_encode": lambda data: codec.zstd_encode(data, level=_levels[Compression.ZSTD]),
        "lz4_encode": lambda data: codec.lz4_encode(data, level=_levels[Compression.LZ4]),
        "gzip_encode": lambda data: codec.gzip_encode(data, compresslevel=_levels[Compression.GZIP]),
    }
    for name in _MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # aiokafka without its compiled extension
            continue
        for attr, encode in encoders.items():
            current = getattr(module, attr, None)
            if current is None:  # a release that compresses elsewhere: its own levels apply
                log.warning("aiokafka's %s has no %s: output compression levels are the client's", name, attr)
            elif getattr(current, "__module__", None) != __name__:
                setattr(module, attr, encode)
