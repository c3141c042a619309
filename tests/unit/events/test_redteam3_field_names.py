"""Red-team pass 3: the field names a ``schema.drift`` event carries are the records' keys, which a producer
chooses freely.

Found: a JSON record with the key ``""`` (valid JSON) made the batch and the window ``schema.drift`` event break
their own schema (``unknown_fields`` names had ``minLength: 1``): a consumer validating it refused it. A key of
any length was carried whole, twice in the window form (``unknown_fields`` and ``first_offending``): 64
undeclared keys of a few hundred KB made a window's event larger than a topic accepts, and the stream-time
observer sends window events without the pipeline's shrinking. Names are now cut after 256 characters with a
``…[truncated N bytes]`` marker (names cut alike add up).
"""

from __future__ import annotations

import jsonschema
import pytest

from streams.events import event_data, from_kafka, to_kafka, validate_event
from streams.events.drift import window_schema_drift
from streams.events.types import MAX_FIELD_CHARS
from streams.windows.finalize import SchemaDrift, WindowVerdict
from streams.windows.partial import FieldTally, WindowKey
from tests.unit.events.test_events import _contract, _drift

C = _contract()


def _window(unknown: dict[str, FieldTally]) -> WindowVerdict:
    key = WindowKey(C.id, C.version, C.schemas[0].name, "t", 0, 60_000)
    drift = SchemaDrift(unknown, {}, {}, ())
    return WindowVerdict(key, C.sha256, 9, 9, 9, 0, 0, 0, 0, (), {0: ((1, 9),)}, schema_drift=drift)


def _read(event: object) -> dict[str, object]:
    key, value, headers = to_kafka(event)  # type: ignore[arg-type]
    decoded = from_kafka(key, value, headers)
    validate_event(decoded)
    return event_data(decoded)


def test_an_empty_field_name_is_a_valid_unknown_field() -> None:
    assert _read(_drift(C, unknown={"": 2}))["unknown_fields"] == {"": 2}
    data = _read(window_schema_drift(C, _window({"": FieldTally(2, ((0, 3),))}), worker_id="w"))
    assert data["unknown_fields"] == {"": 2}
    assert data["first_offending"]["unknown_fields"] == {"": [{"partition": 0, "offset": 3}]}  # type: ignore[index]


@pytest.mark.parametrize("length", [MAX_FIELD_CHARS + 1, 400_000])
def test_long_field_names_are_cut_and_events_stay_small(length: int) -> None:
    a, b = "é" * length + "a", "é" * length + "b"  # cut alike (same first characters and length): counts added
    batch = to_kafka(_drift(C, unknown={a: 2, b: 3}))[1]
    window = window_schema_drift(C, _window({f"{i}{a}": FieldTally(1, ((0, i),)) for i in range(64)}), worker_id="w")
    assert len(batch) < 2_000 and len(to_kafka(window)[1]) < 100_000  # type: ignore[arg-type]  # 2 bytes a char
    [(name, n)] = _read(_drift(C, unknown={a: 2, b: 3}))["unknown_fields"].items()  # type: ignore[attr-defined]
    assert n == 5 and name.startswith("é" * MAX_FIELD_CHARS) and name.endswith(" bytes]") and len(name) < 300
    shown = _read(window)["unknown_fields"]
    assert len(shown) == 64 and all(len(k) < 300 for k in shown)  # type: ignore[arg-type]


def test_a_short_name_is_carried_as_it_is() -> None:
    name = "x" * MAX_FIELD_CHARS
    assert _read(_drift(C, unknown={name: 1}))["unknown_fields"] == {name: 1}


def test_the_window_form_fields_are_declared_and_checked() -> None:
    """The window form's ``records``, ``never_present`` and ``first_offending`` were not in the schema: any shape
    validated, and a consumer could not rely on them."""
    event = window_schema_drift(C, _window({"promo": FieldTally(2, ((0, 3), (1, 4)))}), worker_id="w")
    data = _read(event)
    assert data["first_offending"]["unknown_fields"] == {"promo": [{"partition": 0, "offset": 3},  # type: ignore[index]
                                                                   {"partition": 1, "offset": 4}]}  # fmt: skip
    for field, bad in (("records", -1), ("never_present", "amount"), ("first_offending", {"unknown_fields": {"a": 3}})):
        broken = from_kafka(*to_kafka(event))
        event_data(broken)[field] = bad
        with pytest.raises(jsonschema.ValidationError):
            validate_event(broken, strict=False)
