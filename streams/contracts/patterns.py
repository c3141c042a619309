"""ODCS ``pattern`` (ECMA-262, as JSON Schema's) rewritten as the engine's regex (Rust ``regex`` crate).

ODCS takes ``pattern`` from JSON Schema, whose regular expressions are ECMA-262 (with the ``u`` flag
JSON Schema recommends: code points, not UTF-16 units). The engine and pandera.polars run Rust's ``regex``
crate, where the class escapes are Unicode-aware: ``\\d`` matches ``٣`` (Arabic-Indic three) and ``\\w``
matches ``é``. A contract author writing ``^\\d{5}$`` means five ASCII digits, as every JSON Schema
validator reads it. :func:`ecma_to_rust` rewrites what differs, so that the rule (and the compiled pandera
schema, which runs the same regex) judges as ECMA-262 does:

* ``\\d`` ``\\D`` → ``[0-9]`` ``[^0-9]``; ``\\w`` ``\\W`` → ``[0-9A-Za-z_]`` and its complement;
  ``\\b`` ``\\B`` → ASCII word boundaries ``(?-u:\\b)`` ``(?-u:\\B)``;
* ``\\s`` ``\\S``: ECMA's white space and line terminators are Rust's Unicode ``\\s`` without U+0085 (NEL)
  and with U+FEFF (BOM);
* ``.`` matches any character but the line terminators ``\\n``, ``\\r``, U+2028, U+2029 (Rust's only
  ``\\n``);
* escapes Rust spells differently: ``\\uXXXX`` (surrogate pairs joined), ``\\u{X…}``, ``\\cX``, ``\\0``,
  ``[\\b]`` (backspace);
* in a class, ``[`` and ``&`` ``~`` and a second ``-`` of ``--`` are literals in ECMA but class operators
  in Rust (nesting, ``&&``, ``~~``, ``--``): escaped. ``[]`` matches nothing and ``[^]`` any character.

Everything else is passed on as written; what Rust cannot run (look-around, backreferences) is refused at
lint by :func:`streams.contracts.types.check_regex`, as before. pandera's own ``Check.str_matches`` /
``Check.str_contains`` (``engine: pandera``) are pandera's Rust regexes and are not rewritten.
"""

from __future__ import annotations

__all__ = ["ecma_to_rust", "re2_to_rust"]

_DIGIT = "0-9"
_WORD = "0-9A-Za-z_"
_SPACE = r"[\s\x{FEFF}&&[^\x{85}]]"
_NOT_SPACE = r"[\S\x{85}&&[^\x{FEFF}]]"
_DOT = r"[^\n\r\x{2028}\x{2029}]"
_HEX = frozenset("0123456789abcdefABCDEF")


def ecma_to_rust(pattern: str) -> str:
    """``pattern`` read as ECMA-262 (JSON Schema's ``pattern``), as a Rust regex that matches the same text."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            text, i = _escape(pattern, i + 1, in_class)
            out.append(text)
            continue
        if in_class:
            if ch == "]":
                in_class = False
                out.append(ch)
            elif ch in "[&~":
                out.append("\\" + ch)
            elif ch == "-" and i > 0 and pattern[i - 1] == "-" and out and out[-1] == "-":
                out.append("\\-")
            else:
                out.append(ch)
            i += 1
            continue
        if ch == "[":
            if pattern.startswith("[]", i):
                out.append(r"[a&&b]")  # the empty class: never matches
                i += 2
                continue
            if pattern.startswith("[^]", i):
                out.append(r"[\s\S]")  # any character
                i += 3
                continue
            in_class = True
            out.append(ch)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            continue
        out.append(_DOT if ch == "." else ch)
        i += 1
    return "".join(out)


def _escape(p: str, i: int, in_class: bool) -> tuple[str, int]:
    """The Rust text of the escape whose letter is ``p[i]`` (after the backslash), and the index after it."""
    c = p[i]
    if c in "dDwW":
        chars = _DIGIT if c in "dD" else _WORD
        if c.islower():
            return (chars if in_class else f"[{chars}]"), i + 1
        return f"[^{chars}]", i + 1  # a nested class inside a class (Rust's union)
    if c in "sS":
        return (_SPACE if c == "s" else _NOT_SPACE), i + 1
    if c in "bB":
        if in_class:
            return (r"\x08" if c == "b" else "\\B"), i + 1  # [\b] is a backspace; [\B] an ECMA error
        return f"(?-u:\\{c})", i + 1
    if c == "c" and i + 1 < len(p) and p[i + 1].isascii() and p[i + 1].isalpha():
        return f"\\x{{{ord(p[i + 1]) % 32:02X}}}", i + 2
    if c == "0" and not (i + 1 < len(p) and p[i + 1].isdigit()):
        return r"\x{00}", i + 1
    if c == "u":
        if p.startswith("{", i + 1) and (end := p.find("}", i + 2)) > 0 and set(p[i + 2 : end]) <= _HEX:
            return f"\\x{{{p[i + 2 : end]}}}", end + 1
        code = _hex4(p, i + 1)
        if code is not None:
            low = _hex4(p, i + 7) if p.startswith("\\u", i + 5) else None
            if 0xD800 <= code < 0xDC00 and low is not None and 0xDC00 <= low < 0xE000:
                return f"\\x{{{0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00):X}}}", i + 11
            return f"\\x{{{code:04X}}}", i + 5
    return "\\" + c, i + 1


def _hex4(p: str, i: int) -> int | None:
    digits = p[i : i + 4]
    return int(digits, 16) if len(digits) == 4 and set(digits) <= _HEX else None


#: RE2's ASCII class escapes (a SQL rule's ``~`` is DuckDB's, whose regexes are RE2) as Rust ASCII classes: outside
#: a class, and inside one (Rust nests classes). RE2's ``\s`` is ``[\t\n\f\r ]`` (no vertical tab).
_RE2_CLASSES = {
    "d": ("[[:digit:]]", "[:digit:]"),
    "D": ("[[:^digit:]]", "[:^digit:]"),
    "w": ("[[:word:]]", "[:word:]"),
    "W": ("[[:^word:]]", "[:^word:]"),
    "s": (r"[\t\n\f\r ]", r"\t\n\f\r "),
    "S": (r"[^\t\n\f\r ]", r"[^\t\n\f\r ]"),
}


def re2_to_rust(pattern: str) -> str:
    """``pattern`` read as RE2 (DuckDB's regexes, so a SQL rule's ``~``) as a Rust regex matching the same text:
    RE2's ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII, Rust's Unicode (``'١٢٣' ~ '\\d+'`` is false in DuckDB,
    was true on the engine). The rest of the syntax is shared; the result reads the same when rewritten again."""
    out: list[str] = []
    i, n, depth = 0, len(pattern), 0  # depth: nesting of character classes
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            c = pattern[i + 1]
            if c in _RE2_CLASSES:
                out.append(_RE2_CLASSES[c][1 if depth else 0])
            elif c in "bB" and not depth and not "".join(out).endswith("(?-u:"):
                out.append(f"(?-u:\\{c})")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[":
            if depth and pattern.startswith("[:", i) and (end := pattern.find(":]", i + 2)) > 0:
                out.append(pattern[i : end + 2])  # a POSIX class inside a class: [[:alpha:]]
                i = end + 2
                continue
            depth += 1
            start = i + 1 + (pattern.startswith("^", i + 1))
            out.append(pattern[i:start])
            i = start
            if i < n and pattern[i] == "]":  # a leading ] is a literal
                out.append("]")
                i += 1
            continue
        if ch == "]" and depth:
            depth -= 1
        out.append(ch)
        i += 1
    return "".join(out)
