"""Red-team pass 3: a consumer must ignore data fields it does not know (docs/events.md, "Versioning"), but
``validate_event`` refused them: every schema closes its objects (``additionalProperties: false``; at the top
of ``distribution.drift``, ``prediction.confidence`` and ``model.performance``, inside ``window`` / ``checks`` /
``offsets`` / ``owner`` of the others). A producer one release ahead that added an optional field (as
``window.summary`` gained ``schema_drifted`` and ``closed_at``, ``model.performance`` gained ``scope``) made every
event of the type fail in a consumer that validated, as the docs' consumer example does. ``strict=False`` (what
consumers pass) allows unknown fields and still checks the known ones; the default stays strict for producers.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from streams.events import event_data, from_kafka, to_kafka, validate_event
from streams.events.codec import CloudEvent
from tests.unit.events.test_redteam3_attributes import _events


def _with(event: Any, change: Any) -> CloudEvent:
    data = copy.deepcopy(event_data(event))
    change(data)
    key, value, headers = to_kafka(CloudEvent(dict(event.get_attributes()), data))
    return from_kafka(key, value, headers)


def _nested(data: dict[str, Any]) -> None:
    """A new field in the first nested object the type has (owner, window, contract, incident, contracts[0])."""
    for name in ("owner", "window", "contract", "incident"):
        if isinstance(data.get(name), dict):
            data[name]["added_in_a_later_release"] = 1
            return
    if data.get("contracts"):  # worker.lifecycle
        data["contracts"][0]["added_in_a_later_release"] = 1
        return
    raise AssertionError(f"no nested object in {sorted(data)}")


EVENTS = {e.get_type() + f"#{i}": e for i, e in enumerate(_events())}  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_a_consumer_accepts_fields_a_newer_producer_added(name: str) -> None:
    event = EVENTS[name]
    validate_event(_with(event, lambda d: d.update(added_in_a_later_release={"x": [1]})), strict=False)
    newer = _with(event, _nested)
    validate_event(newer, strict=False)
    with pytest.raises(jsonschema.ValidationError, match="added_in_a_later_release"):
        validate_event(newer)  # the producer's check stays strict


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_the_lenient_check_still_checks_the_fields_it_knows(name: str) -> None:
    event = EVENTS[name]
    first = sorted(event_data(event))[0]
    broken = _with(event, lambda d: d.update({first: {"not": "what the schema says"}}))
    with pytest.raises(jsonschema.ValidationError):
        validate_event(broken, strict=False)
