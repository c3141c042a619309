"""JSON values the decoder must not trust blindly: duplicate keys and deep nesting.

* **Duplicate keys.** orjson keeps the last value of a repeated key, silently; a consumer whose
  parser keeps the first one would read another record than the one validated. An ambiguous
  record is dead-lettered (``decode.DUPLICATE_KEY``), never forwarded. The test is cheap:
  :func:`key_bound` counts the places a key can end in the bytes (``"`` then optional blanks
  then ``:``), an upper bound of the keys the document has at every level; when it equals the
  number of keys orjson kept (a C ``bytes.count`` and a ``len`` for a flat record) there is no
  duplicate. Only when it does not (nested objects, a ``":`` inside a string) are the kept keys
  counted, and only when those still differ is the document re-read with a pairs hook (deeper than
  Python's recursion limit: its tokens scanned with an explicit stack, :func:`_scan_duplicates`).
* **Deep nesting.** orjson parses up to 1024 levels (deeper: ``decode.TOO_DEEP`` at once) but
  serializes only 254; :func:`shown` prints a value for a mismatch sample without that limit
  raising (which used to make the pipeline bisect the whole batch).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["has_duplicate_keys", "key_bound", "shown"]

_BLANKS = b" \t\r\n"


def key_bound(v: bytes) -> int:
    """An upper bound of the keys (at every level) of the JSON document ``v``: the ``"`` then ``:`` pairs.

    Blanks are dropped first when there are any (a key may end ``"key" :``); dropping them can only add pairs.
    """
    return v.translate(None, _BLANKS).count(b'":')


def _kept_keys(d: dict[str, Any]) -> int:
    """Keys of ``d`` and of every object nested in it (an explicit stack: no recursion limit)."""
    total, stack = 0, list[Any]([d])
    while stack:
        x = stack.pop()
        if type(x) is dict:
            total += len(x)
            stack.extend(y for y in x.values() if type(y) in (dict, list))
        else:
            stack.extend(y for y in x if type(y) in (dict, list))
    return total


class _Duplicate(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise _Duplicate
    return d


def has_duplicate_keys(v: bytes, d: dict[str, Any]) -> bool:
    """True when the JSON object ``v`` (parsed by orjson as ``d``) repeats a key in one of its objects."""
    bound = v.translate(None, _BLANKS).count(b'":')  # key_bound, inlined (per record; cheaper than testing blanks)
    if bound == len(d) or bound == _kept_keys(d):
        return False
    try:
        json.loads(v, object_pairs_hook=_pairs)
    except _Duplicate:
        return True
    except RecursionError:  # deeper than Python's recursion limit (orjson reads 1024 levels): scan without recursion
        return _scan_duplicates(v)
    except ValueError:  # orjson read it; a stricter reader did not: ambiguous
        return True
    return False


# a JSON string (escapes kept) or a structural character; numbers and literals are skipped
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:]', re.DOTALL)


def _scan_duplicates(v: bytes) -> bool:
    """True when the JSON document ``v`` (which orjson read) repeats a key in one of its objects: its tokens walked
    with an explicit stack (no recursion), keys compared once unescaped (``"\\u0061"`` is ``"a"``)."""
    stack: list[set[str] | None] = []
    last = b""
    for token in _TOKENS.finditer(v):
        t = token.group()
        c = t[0]
        if c == 0x22:  # a string: a key when a colon follows
            last = t
        elif c == 0x3A:
            keys = stack[-1]
            key = orjson.loads(last)
            if keys is None or key in keys:
                return True
            keys.add(key)
        elif c == 0x7B:
            stack.append(set())
        elif c == 0x5B:
            stack.append(None)
        else:
            stack.pop()
    return False


def shown(x: Any) -> str:
    """``x`` as JSON text for a mismatch sample; never raises on nesting depth."""
    try:
        return orjson.dumps(x).decode()
    except TypeError:  # orjson serializes 254 levels at most
        return f"<a {type(x).__name__} nested deeper than 254 levels>"
