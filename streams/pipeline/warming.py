"""A binding's one-off costs paid before its first batch: the worker warms its bindings while its clients connect.

The first batch a binding routes used to take ~100-150 ms more than the next ones (the engine's plans compiled for
the wire schema, pyarrow's compute module imported by the timestamp parser, polars' NDJSON reader and writer set
up): under full load that one batch was the worker's p99 latency. :func:`warm` runs the decoder and the engine once
on a record of nulls (as many rows as a full batch) and keeps nothing but those caches: a fresh per-message decoder
reads the record, the bulk reader only parses and proves it (its learnt key order and cooldown untouched), no stage
(stream time) sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from streams.pipeline.verdicts import merge_mismatches

if TYPE_CHECKING:
    from streams.pipeline.binding import Binding

__all__ = ["warm", "warm_all"]

log = logging.getLogger(__name__)


def warm(binding: Binding) -> None:
    """Decode and validate a record of nulls for ``binding`` (its stages and decoder state untouched)."""
    decoded = binding.decoder.warm()
    if decoded.frame.height:  # as many rows as a full batch: the engine's plans are cached per size class
        frame = decoded.frame[[0] * binding.settings.batch_max_records]
        merge_mismatches(binding.plan.validate(frame), binding.schema, decoded.mismatches)


def warm_all(bindings: Iterable[Binding]) -> None:
    """:func:`warm` every binding; a failure only leaves the cost to the first batch (logged)."""
    for binding in bindings:
        try:
            warm(binding)
        except Exception:
            log.warning("could not warm up the binding of %s", binding.topic, exc_info=True)
