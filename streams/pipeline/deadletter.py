"""The one builder of dead-letter records: a source message, unchanged, to ``<topic>.dlq`` with reason headers."""

from __future__ import annotations

from collections.abc import Sequence

from streams.pipeline.headers import HeaderNames, appended
from streams.pipeline.records import BatchResult, Headers, Message, OutRecord
from streams.settings import Settings

__all__ = ["dead_letter", "internal_dead_letters"]


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
