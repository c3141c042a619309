"""Record field names as outputs carry them: a producer chooses a record's keys freely, up to the message limit.

:func:`field_name` cuts a name after :data:`MAX_FIELD_CHARS` characters with a ``…[truncated N bytes]`` marker
(the cut of the pipeline's oversized events), so that 64 undeclared keys of a few hundred KB neither make a
``schema.drift`` event larger than a topic accepts nor a window's state record larger than its changelog
accepts. Names cut alike (same first characters, same length) add up. The cut is idempotent: a name cut once
is carried as it is.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_FIELD_CHARS", "cut_text", "field_name"]

#: a field name of a record longer than this is cut (``…[truncated N bytes]``)
MAX_FIELD_CHARS: Final = 256

_CUT = re.compile(r"…\[truncated \d+ bytes\]\Z")


def cut_text(text: str, chars: int) -> str:
    """``text`` cut after ``chars`` characters with a ``…[truncated N bytes]`` marker (N: the UTF-8 bytes cut)."""
    if len(text) <= chars:
        return text
    kept = text[:chars]
    cut = len(text.encode("utf-8", "surrogatepass")) - len(kept.encode("utf-8", "surrogatepass"))
    return f"{kept}…[truncated {cut} bytes]"


def field_name(name: str) -> str:
    """A record's field name as events and window state carry it: cut after :data:`MAX_FIELD_CHARS` characters;
    a name already cut (its first :data:`MAX_FIELD_CHARS` characters and the marker) is returned as it is."""
    if len(name) <= MAX_FIELD_CHARS or _CUT.match(name, MAX_FIELD_CHARS):
        return name
    return cut_text(name, MAX_FIELD_CHARS)
