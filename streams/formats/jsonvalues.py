"""JSON values the decoder must not trust blindly: duplicate keys and deep nesting.

* **Duplicate keys.** orjson keeps the last value of a repeated key, silently; a consumer whose
  parser keeps the first one would read another record than the one validated. An ambiguous
  record is dead-lettered (``decode.DUPLICATE_KEY``), never forwarded. The test is cheap:
  :func:`key_bound` counts the places a key can end in the bytes (``"`` then optional blanks
  then ``:``), an upper bound of the keys the document has at every level; when it equals the
  number of keys orjson kept (a C ``bytes.count`` and a ``len`` for a flat record) there is no
  duplicate. Only when it does not (nested objects, a ``":`` inside a string) are the kept keys
  counted, and only when those still differ is the document re-read with a pairs hook.
* **Deep nesting.** orjson parses up to 1024 levels (deeper: ``decode.TOO_DEEP`` at once) but
  serializes only 254; :func:`shown` prints a value for a mismatch sample without that limit
  raising (which used to make the pipeline bisect the whole batch).
"""

from __future__ import annotations

import json
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
    except (ValueError, RecursionError):  # orjson read it; a stricter or shallower reader did not: ambiguous
        return True
    return False


def shown(x: Any) -> str:
    """``x`` as JSON text for a mismatch sample; never raises on nesting depth."""
    try:
        return orjson.dumps(x).decode()
    except TypeError:  # orjson serializes 254 levels at most
        return f"<a {type(x).__name__} nested deeper than 254 levels>"
