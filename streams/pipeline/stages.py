"""Stages: what a higher layer may add to a binding's batch, between validation and routing.

A :class:`Stage` sees the decoded rows, the engine's report and the dead-lettered messages
of a batch before it is routed. It returns the report the batch is routed by (the same,
or one whose ``valid_mask``/``violations`` it amended) and records to produce with the
batch's outputs, so they are acknowledged before its offsets are committed (stream-time
state, for instance: :mod:`streams.windows.worker`, installed by :mod:`streams.windows.observer`).
The pipeline defines the seam; the implementations live above it.

What a call sees (``Binding.process_poll``): when some stage of the binding ``judges_windows`` (stream time), one
source partition's batch per call, cut from the poll's one decode and validation (the same rows, verdicts and
messages as the batch decoded and validated alone); otherwise a poll of the topic, from several partitions, as one
batch. A stage judging windows that is a :class:`PollStage` (every stage of the binding must be) sees instead the
whole poll in one ``amend_poll`` call, and gives each partition batch the records it would give it alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import polars as pl

from streams.pipeline.records import Message, OutRecord
from streams.validation.report import ValidationReport

__all__ = ["PollStage", "Stage"]


class Stage(Protocol):
    #: True when the stage judges event-time windows and publishes a verdict per window (``rule.violation``
    #: once per rule per window): the binding then publishes per-batch events only with ``STREAMS_BATCH_EVENTS``.
    judges_windows: bool

    def amend(
        self,
        messages: Sequence[Message],
        frame: pl.DataFrame,
        rows: Sequence[int],
        report: ValidationReport | None,
        dead: Sequence[int],
        irregular: Sequence[tuple[int, tuple[str, ...], tuple[str, ...]]] = (),
    ) -> tuple[ValidationReport | None, list[OutRecord]]:
        """``(report to route by, records to produce)`` for one batch.

        ``frame``: the decoded rows (the rows of ``report``; ``report`` is None when no
        record decoded); ``rows``: the index in ``messages`` of each row's message;
        ``dead``: indices of the dead-lettered messages; ``irregular``: the rows that carry
        undeclared fields or lack declared ones (``Decoded.irregular``).
        """
        ...


class PollStage(Stage, Protocol):
    def amend_poll(
        self,
        messages: Sequence[Message],
        frame: pl.DataFrame,
        rows: Sequence[int],
        report: ValidationReport | None,
        dead: Sequence[int],
        irregular: Sequence[tuple[int, tuple[str, ...], tuple[str, ...]]] = (),
    ) -> tuple[ValidationReport | None, dict[int, list[OutRecord]]]:
        """``(report to route the poll's rows by, records to produce per source partition)`` for a poll of several
        partitions' batches (``messages``: the batches one after the other, each of one partition): the verdict per
        row and each batch's records are what :meth:`Stage.amend` gives the batches one by one, in this order."""
        ...
