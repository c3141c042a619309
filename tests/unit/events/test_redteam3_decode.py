"""Red-team pass 3: what a consumer gets from :func:`streams.events.codec.from_kafka` on records that are not
(quite) quality events.

Found: the SDK fills a missing ``id`` with a random UUID (and ``specversion`` with 1.0), so a record whose
``ce_id`` header was lost decoded as a valid event with a new id on every read: a replay never de-duplicated. A
missing ``time`` was stamped with the consumer's wall clock. A binary record key (another producer's) made a valid
event undecodable, and malformed headers raised ``UnicodeDecodeError`` / ``ValueError`` / ``AttributeError`` that
the documented ``except (CloudEventValidationError, EventError)`` did not catch: a consumer following the docs
crashed on one bad record.
"""

from __future__ import annotations

from typing import Any

import pytest
from cloudevents.core.exceptions import CloudEventValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.errors import EventError
from streams.events.codec import event_data, from_kafka, to_kafka
from tests.unit.events.test_events import _contract, _report, _summary

STRUCTURED = [("content-type", b"application/cloudevents+json")]


def _record() -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    return to_kafka(_summary(_contract(), _report(_contract())))


def _without(headers: list[tuple[str, bytes]], name: str) -> list[tuple[str, bytes]]:
    out = [(n, v) for n, v in headers if n != name]
    assert len(out) == len(headers) - 1
    return out


@pytest.mark.parametrize("header", ["ce_id", "ce_specversion", "ce_source", "ce_type"])
def test_a_record_without_a_required_attribute_is_refused_not_given_a_random_id(header: str) -> None:
    key, value, headers = _record()
    with pytest.raises((EventError, CloudEventValidationError), match=header.removeprefix("ce_")):
        from_kafka(key, value, _without(headers, header))


def test_structured_mode_without_an_id_is_refused() -> None:
    value = b'{"specversion": "1.0", "type": "t", "source": "s", "data": {}}'
    with pytest.raises(EventError, match="id"):
        from_kafka(None, value, STRUCTURED)


def test_an_event_without_time_gets_no_time_invented() -> None:
    key, value, headers = _record()
    event = from_kafka(key, value, _without(headers, "ce_time"))
    assert event.get_time() is None
    structured = b'{"specversion": "1.0", "id": "1", "type": "t", "source": "s", "data": {"a": 1}}'
    assert from_kafka(b"k", structured, STRUCTURED).get_time() is None
    assert from_kafka(b"k", structured, STRUCTURED).get_extension("partitionkey") == "k"


def test_a_binary_key_does_not_make_a_valid_event_undecodable() -> None:
    key, value, headers = _record()
    event = from_kafka(b"\xff\xfe\x00", value, headers)
    assert event_data(event)["schema"] == "card_transactions"
    assert event.get_extension("partitionkey") is None
    assert from_kafka(key, value, headers).get_extension("partitionkey") == key.decode()  # type: ignore[union-attr]


def _malformed() -> dict[str, tuple[Any, Any, Any]]:
    key, value, headers = _record()

    def swap(name: str, new: bytes) -> list[tuple[str, bytes]]:
        return [(n, new if n == name else v) for n, v in headers]

    return {
        "header not UTF-8": (key, value, swap("ce_subject", b"\xff")),
        "time not RFC 3339": (key, value, swap("ce_time", b"yesterday")),
        "empty time": (key, value, swap("ce_time", b"")),
        "structured garbage": (key, b"not json", STRUCTURED),
        "structured array": (key, b"[1, 2]", STRUCTURED),
        "structured bad time": (key, b'{"specversion":"1.0","id":"1","source":"s","type":"t","time":"x"}', STRUCTURED),
        "header without value": (key, value, [("ce_id",)]),
    }


@pytest.mark.parametrize("case", sorted(_malformed()))
def test_every_malformed_record_raises_a_documented_error(case: str) -> None:
    key, value, headers = _malformed()[case]
    with pytest.raises((EventError, CloudEventValidationError)):
        from_kafka(key, value, headers)


_names = st.sampled_from(["ce_id", "ce_type", "ce_source", "ce_specversion", "ce_time", "ce_subject", "content-type",
                          "ce_dataschema", "ce_Bad-Name", "ce_", "x"])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    key=st.none() | st.binary(max_size=8),
    value=st.binary(max_size=64) | st.sampled_from([b"{}", b"[]", b'{"specversion":"1.0"}', b"null"]),
    headers=st.lists(st.tuples(_names, st.binary(max_size=12) | st.sampled_from([b"1.0", b"2025-01-01T00:00:00Z"]))),
)
def test_generated_records_decode_or_raise_a_documented_error(
    key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    try:
        event = from_kafka(key, value, headers)
    except (EventError, CloudEventValidationError) as exc:
        assert str(exc)  # refused with a reason
    else:  # decoded: every required attribute came from the record, none was invented
        names = {n.lower() for n, _ in headers}
        if any(n.startswith("ce_") for n in names):  # binary mode
            assert {"ce_id", "ce_source", "ce_type", "ce_specversion"} <= names
        else:  # structured mode: the envelope named its id
            assert b'"id"' in value
        assert event.get_id() and event.get_source() and event.get_type() and event.get_specversion() == "1.0"
