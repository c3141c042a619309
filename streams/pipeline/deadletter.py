"""The one builder of dead-letter records: a source message, unchanged, to ``<topic>.dlq`` with reason headers."""

from __future__ import annotations

from collections.abc import Sequence

from streams.formats.reasons import DeadLetter
from streams.pipeline.headers import HeaderNames, appended
from streams.pipeline.records import BatchResult, Headers, Message, OutRecord
from streams.settings import Settings

__all__ = ["dead_letter", "grouped", "internal_dead_letters"]


def dead_letter(
    m: Message, *, settings: Settings, names: HeaderNames, contract_ref: str, error_class: str, text: str,
    value: bytes | None = None, extra: Headers = (),
) -> OutRecord:  # fmt: skip
    """``m`` (or ``value`` in its place, e.g. one NDJSON line) to ``<topic>.dlq``; stage is the class's first part."""
    headers = names.error_headers(
        topic=m.topic, partition=m.partition, offset=m.offset, contract_ref=contract_ref,
        stage=error_class.split(".", 1)[0], error_class=error_class, message=text,
    )  # fmt: skip
    body = m.value if value is None else value
    return OutRecord(settings.output_topic(m.topic, "dlq"), body, m.key, appended(m.headers, headers, extra),
                     m.timestamp_ms)  # fmt: skip


def internal_dead_letters(
    contract_ref: str, messages: Sequence[Message], error: BaseException, settings: Settings, *, worker_id: str = ""
) -> BatchResult:
    """A batch given up after retries: every message to ``<topic>.dlq`` with class ``internal.<Exception>``."""
    names = HeaderNames(settings.header_prefix)
    cls = f"internal.{type(error).__name__}"
    text = f"Processing this batch raised {type(error).__name__} on every retry; see the worker log."
    signed = names.provenance(str(settings.mode), worker_id) if worker_id else ()
    out = [
        dead_letter(m, settings=settings, names=names, contract_ref=contract_ref, error_class=cls, text=text,
                    extra=signed)
        for m in messages
    ]  # fmt: skip
    last = {m.partition: m.offset for m in messages}
    return BatchResult(dead_lettered=out, counts={"dead_lettered": len(out)}, last_offsets=last)


def grouped(dead: Sequence[DeadLetter]) -> list[tuple[int, str, str, list[int] | None]]:
    """A batch's dead letters as DLQ outputs, ``(message, class, sentence, lines)``, in order of first appearance: an
    undecodable message alone (``lines`` None); the undecodable lines of an NDJSON message one output per reason,
    as its invalid records are one quarantined output (a hostile message of 500,000 bad lines is one DLQ record, not
    500,000 copies of its headers)."""
    out: list[tuple[int, str, str, list[int] | None]] = []
    groups: dict[tuple[int, str], int] = {}  # (message, reason) -> its place in out
    for d in dead:
        if d.line is None:
            out.append((d.message, f"decode.{d.reason}", d.detail, None))
            continue
        at = groups.get((d.message, d.reason))
        if at is None:
            groups[(d.message, d.reason)] = len(out)
            out.append((d.message, f"decode.{d.reason}", d.detail, [d.line]))
        else:
            lines = out[at][3]
            assert lines is not None
            lines.append(d.line)
    for k, (i, cls, first, lines) in enumerate(out):
        if lines is not None and len(lines) > 1:
            text = f"{len(lines)} lines of this NDJSON message could not be decoded ({cls}); the first: {first}"
            out[k] = (i, cls, text, lines)
    return out
