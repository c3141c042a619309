"""Media types that select a decoder, and reading them from Kafka-style headers (name, bytes) pairs."""

from __future__ import annotations

__all__ = ["ARROW_STREAM", "CONTENT_TYPE", "NDJSON", "Headers", "content_type", "header", "textual"]

Headers = tuple[tuple[str, bytes | None], ...]  # a Kafka header may have no value (null)

#: The conventional content-type header and the values that select a decoder.
CONTENT_TYPE = "content-type"
NDJSON = "application/x-ndjson"
ARROW_STREAM = "application/vnd.apache.arrow.stream"


def header(headers: Headers, name: str) -> bytes | None:
    """The last value of header ``name`` (case-insensitive), or None."""
    wanted = name.lower()
    for key, value in reversed(headers):
        if key.lower() == wanted:
            return value
    return None


def content_type(headers: Headers) -> str | None:
    """The media type of the ``content-type`` header, lower-cased, parameters dropped (``; charset=...``)."""
    raw = header(headers, CONTENT_TYPE) if headers else None
    if not raw:
        return None
    return raw.decode("latin-1").split(";", 1)[0].strip().lower() or None


def textual(ctype: str | None) -> bool:
    """A media type the JSON decoder reads as it reads an unannounced value: none, a JSON one (``application/json``,
    ``application/cloudevents+json``, ``text/json``) or text. Others (``application/avro``, ``application/x-protobuf``,
    ``application/octet-stream``, …) are still read as JSON when they hold JSON; when they do not, the dead letter
    says the format is not decoded (``decode.UNSUPPORTED_FORMAT``) rather than "not valid JSON"."""
    return ctype is None or "json" in ctype or ctype.startswith("text/")
