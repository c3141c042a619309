"""Both decoders against an independent reference: the standard library's ``json`` and the contract read literally.

Messages are written byte by byte from JSON tokens that parsers disagree on (``-0``, ``3.0``, ``1e2``, integers
beyond int64 on both sides, ``NaN``, ``Infinity``, lone surrogate escapes, escaped keys, raw control characters,
duplicate keys, invalid UTF-8, byte order marks, blanks, deep nesting), so a record's value, its type mismatches,
its unknown and missing fields, or the reason it is dead-lettered are known without orjson or polars.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streams.contracts.loader import parse_contract
from streams.formats.decoder import Decoder, MessageDecoder
from streams.formats.reasons import Decoded
from streams.pipeline.records import Message

SCHEMA = parse_contract("""\
apiVersion: v3.1.0
kind: DataContract
id: urn:test:reference
version: 1.0.0
status: draft
schema:
  - name: probe
    physicalName: probe.v1
    properties:
      - {name: i, logicalType: integer}
      - {name: f, logicalType: number}
      - {name: s, logicalType: string}
      - {name: b, logicalType: boolean}
""").schema()
KIND = {"i": "int", "f": "float", "s": "str", "b": "bool"}
INT64 = (-(2**63), 2**63)

NUMBERS = [b"0", b"-0", b"-0.0", b"3", b"3.0", b"3.5", b"1e2", b"1E+2", b"-1e2", b"9223372036854775807",
           b"9223372036854775808", b"-9223372036854775808", b"-9223372036854775809", b"-9223372036854775808.0",
           b"18446744073709551616", b"-99999999999999999999999", b"1" + b"0" * 400, b"1e309", b"5e-324", b"1e-400",
           b"9007199254740993", b"0.1", b"NaN", b"Infinity", b"-Infinity", b"+1", b"01", b".5", b"1."]  # fmt: skip
STRINGS = [b'""', b'"12"', b'"\\u0069"', b'"\\/"', b'"\\ud800"', b'"\\ud83d\\ude00"', b'"\xf0\x9f\x98\x80"',
           b'"\xff"', b'"\xed\xa0\x80"', b'"a\tb"', b'"a\x7fb"', b'"\\u0000"', b'"\xe2\x80\xa8"', b'"\\":"',
           b'"\xef\xbb\xbf"']  # fmt: skip
OTHERS = [b"true", b"false", b"null", b"[]", b"{}", b"[1,2]", b'{"a":1,"a":2}', b"True", b"None"]
KEYS = {"i": [b'"i"', b'"\\u0069"'], "f": [b'"f"'], "s": [b'"s"', b'"\\u0073"'], "b": [b'"b"']}


class _Dup(Exception):
    pass


def _pairs(kv: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(dict(kv)) != len(kv):
        raise _Dup
    return dict(kv)


def _constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: not JSON


def _walk(x: Any) -> list[Any]:
    out, stack = [], [x]
    while stack:
        y = stack.pop()
        out.append(y)
        if type(y) is dict:
            stack += [*y.keys(), *y.values()]
        elif type(y) is list:
            stack += y
    return out


def _depth(text: str) -> int:
    depth = top = 0
    inside = escaped = False
    for c in text:
        if inside:
            escaped, inside = (False, True) if escaped else (c == "\\", c != '"')
        elif c == '"':
            inside = True
        elif c in "[{":
            depth += 1
            top = max(top, depth)
        elif c in "]}":
            depth -= 1
    return top


def _unrepresentable(y: Any) -> bool:
    """A lone surrogate (not Unicode text) or a number beyond the double range."""
    if type(y) is str:
        return any(0xD800 <= ord(c) <= 0xDFFF for c in y)
    if type(y) is float:
        return math.isinf(y)
    if type(y) is int and abs(y) > 10**300:
        try:
            float(y)
        except OverflowError:
            return True
    return False


def _field(kind: str, x: Any) -> tuple[Any, bool]:
    """The wire value of ``x`` in a field of ``kind`` and whether it is a type mismatch (the contract, read literally:
    JSON has one number type; an integer is a number without fraction within int64)."""
    if x is None:
        return None, False
    if kind == "int":
        if type(x) is int and INT64[0] <= x < INT64[1]:
            return x, False
        if type(x) is float and x.is_integer() and INT64[0] < x < INT64[1]:  # -2**63 as a float: maybe rounded
            return int(x), False
        return None, True
    if kind == "float":
        return (float(x), False) if type(x) in (int, float) else (None, True)
    return (x, False) if type(x) is (str if kind == "str" else bool) else (None, True)


def reference(v: bytes) -> tuple[Any, ...]:
    if v.startswith((b"ARROW1", b"\xff\xff\xff\xff")):  # Arrow's magic: the Arrow reader's
        return ("dead", {"BAD_ARROW"})
    body = v[3:] if v.startswith(b"\xef\xbb\xbf") else v
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return ("dead", {"NOT_UTF8"})
    if not text.strip(" \t\r\n"):
        return ("dead", {"EMPTY"})
    if _depth(text) > 1024:
        return ("dead", {"TOO_DEEP"})
    try:
        d = json.loads(text, parse_constant=_constant)
    except ValueError:
        return ("dead", {"NOT_JSON", "TRUNCATED"})
    if any(map(_unrepresentable, _walk(d))):
        return ("dead", {"NOT_JSON"})
    if type(d) is not dict:
        return ("dead", {"NOT_OBJECT"})
    try:
        json.loads(text, object_pairs_hook=_pairs)
    except _Dup:
        return ("dead", {"DUPLICATE_KEY"})
    # integer literals within int64 must be read exactly, and integral floats beyond 2**53 as the double they are
    row, bad = {}, set()
    for name, kind in KIND.items():
        row[name], wrong = _field(kind, d.get(name))
        if wrong:
            bad.add(name)
    return ("row", row, bad, set(d) - set(KIND), set(KIND) - set(d))


def summary(dec: Decoded) -> dict[int, tuple[Any, ...]]:
    out: dict[int, tuple[Any, ...]] = {d.message: ("dead", str(d.reason)) for d in dec.dead}
    bad: dict[int, set[str]] = {}
    for r, c in dec.mismatches.select("row", "column").iter_rows():
        bad.setdefault(r, set()).add(c)
    irregular = {r: (set(u), set(m)) for r, u, m in dec.irregular}
    for r, (row, i) in enumerate(zip(dec.frame.to_dicts(), dec.message.to_list(), strict=True)):
        out[i] = ("row", row, bad.get(r, set()), *irregular.get(r, (set(), set())))
    return out


def same_row(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for k in KIND:
        x, y = a[k], b[k]
        if type(x) is float and type(y) is float:
            if x != y or math.copysign(1, x) != math.copysign(1, y):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


@st.composite
def value(draw: st.DrawFn) -> bytes:
    members = []
    for name in draw(st.permutations(list(KIND))):
        pick = draw(st.sampled_from(["good", "good", "number", "string", "other", "drop", "dup"]))
        if pick == "drop":
            continue
        if pick == "good":
            literal = orjson.dumps(
                draw(
                    {
                        "i": st.integers(*INT64).map(lambda n: min(n, INT64[1] - 1)),
                        "f": st.floats(allow_nan=False, allow_infinity=False),
                        "s": st.text(max_size=6),
                        "b": st.booleans(),
                    }[name]
                )
            )
        else:
            literal = draw(st.sampled_from({"number": NUMBERS, "string": STRINGS}.get(pick, OTHERS)))
        members.append(draw(st.sampled_from(KEYS[name])) + b":" + literal)
        if pick == "dup":
            members.append(b'"' + name.encode() + b'":null')
    if draw(st.booleans()):
        members.append(draw(st.sampled_from([b'"zz":1', b'"":[]', b'"\\u00e9":{}'])))
    blank = draw(st.sampled_from([b"", b"", b" ", b"\t"]))
    doc = b"{" + blank + b",".join(members) + blank + b"}"
    shape = draw(st.sampled_from(["as is"] * 6 + ["bom", "blank", "wrap", "cut", "deep", "junk", "formfeed"]))
    return {
        "as is": doc,
        "bom": b"\xef\xbb\xbf" + doc,
        "blank": b" \r\n" + doc + b"\t",
        "wrap": b"[" + doc + b"]",
        "cut": doc[: max(1, len(doc) // 2)],
        "deep": b'{"x":' + b"[" * 1030 + b"]" * 1030 + b"}"
        if draw(st.booleans())
        else b'{"x":' + b"[" * 900 + b"]" * 900 + b',"s":"\\":"}',
        "junk": draw(st.binary(min_size=1, max_size=6)),
        "formfeed": b"\x0c",
    }[shape]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(values=st.lists(value(), min_size=1, max_size=30))
@example(values=[b'{"i":-9223372036854775809}', b'{"i":-9223372036854775808.0}', b'{"i":9223372036854775807.0}'])
@example(values=[b"\x0c", b"\xc2\xa0", b"\xef\xbb\xbf", b"\xef\xbb\xbf[1]"])
@example(values=[b'{"s":"\\":","x":' + b"[" * 1000 + b"]" * 1000 + b"}", b'{"\\u0069":1,"i":2}'])
def test_both_decoders_read_what_the_reference_reads(values: list[bytes]) -> None:
    messages = [Message(SCHEMA.topic, 0, k, v) for k, v in enumerate(values)]
    bulk = Decoder(SCHEMA)
    assert bulk._bulk is not None
    bulk._bulk.min_batch, bulk._bulk.leaf, bulk._bulk.pause = 1, 1, 0
    per_message = MessageDecoder(SCHEMA)
    for decoded in (summary(bulk.decode(messages)), summary(per_message.decode(messages))):
        for k, v in enumerate(values):
            want, got = reference(v), decoded[k]
            if want[0] == "dead":
                assert got[0] == "dead" and got[1] in want[1], (v, got, want)
            else:
                assert got[0] == "row" and same_row(got[1], want[1]) and got[2:] == want[2:], (v, got, want)
