"""Red-team pass 3: ``qstreams events tail`` on records it cannot read.

Found: the tail caught only what ``from_kafka`` raised; a record that decoded but whose data the view could not
read (a ``policy.triggered`` without ``incident``, a ``window.summary`` whose checks are not objects, data that is
not JSON for ``--json``) raised out of the loop and ended the live view. Each record now goes through
:func:`streams.cli.policies.tail_record`, which logs and skips it.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest

from streams.cli.policies import tail_record
from streams.events.codec import to_kafka
from streams.policies.tail import TailFilter, TailView
from tests.unit.events.test_events import _contract, _report, _summary


@dataclass
class Rec:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    offset: int = 7


def _record(ce_type: str, value: bytes) -> Rec:
    key, _, headers = to_kafka(_summary(_contract(), _report(_contract())))
    return Rec(key, value, [(n, ce_type.encode() if n == "ce_type" else v) for n, v in headers])


BAD = {
    "triggered without incident": _record("io.qualitystreams.policy.triggered.v1", b'{"policy": {}}'),
    "checks not objects": _record("io.qualitystreams.window.summary.v1", orjson.dumps({"checks": [1, "x"]})),
    "data not JSON": _record("io.qualitystreams.rule.violation.v1", b"\\xff not json"),
    "no ce_id": Rec(b"k", b"{}", [("ce_type", b"t"), ("ce_source", b"s"), ("ce_specversion", b"1.0")]),
}


#: with --json a record whose data is a JSON object is printed as it is (the view is what cannot read it)
PRINTED = {"triggered without incident", "checks not objects"}


@pytest.mark.parametrize("json_", [False, True])
@pytest.mark.parametrize("case", sorted(BAD))
def test_a_record_the_view_cannot_read_is_skipped_not_fatal(case: str, json_: bool, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:  # fmt: skip
    view = TailView()
    good = _record("io.qualitystreams.window.summary.v1", orjson.dumps({"checks": [], "passed": True}))
    assert tail_record(good, TailFilter(), view, json_) is True
    assert tail_record(BAD[case], TailFilter(), view, json_) is (json_ and case in PRINTED)
    assert tail_record(good, TailFilter(), view, json_) is True  # the tail goes on
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == (2 + (case in PRINTED) if json_ else 0)
    assert all(orjson.loads(line)["type"] for line in lines)
