"""The pattern parser of the regex fast path: a small strict parser of the analyzed subset.

Anything it does not know is outside the subset (:func:`parse` returns None), never a
guess; see :mod:`streams.validation.regex` for the subset.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_COUNT", "Atom", "Pattern", "parse"]

#: Rust's meta characters, each of which may be escaped to stand for itself (Python agrees).
_META = frozenset("\\.+*?()|[]{}^$#&-~")
_PLAIN = frozenset("#&-~")  # meta characters that are literals outside a class (no x flag)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
MAX_COUNT = 1000  # largest repetition bound accepted


class _Unsupported(Exception):
    """The pattern is outside the analyzed subset."""


@dataclass(frozen=True, slots=True)
class Atom:
    """A set of ASCII code points (or its complement over all characters) repeated ``low`` to
    ``high`` times (``high`` None: unbounded)."""

    chars: frozenset[int]
    negated: bool
    low: int = 1
    high: int | None = 1


@dataclass(frozen=True, slots=True)
class Pattern:
    atoms: tuple[Atom, ...]
    end: bool  # anchored at the end of the text


def parse(pattern: str) -> Pattern | None:
    """The pattern as a sequence of atoms, or None if it is outside the subset."""
    try:
        return _Parser(pattern).parse()
    except _Unsupported:
        return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def peek(self) -> str | None:
        return self.text[self.i] if self.i < len(self.text) else None

    def take(self) -> str:
        ch = self.peek()
        if ch is None:
            raise _Unsupported("unexpected end")
        self.i += 1
        return ch

    def parse(self) -> Pattern:
        if self.peek() != "^":
            raise _Unsupported("not anchored at the start")
        self.i = 1
        atoms: list[Atom] = []
        end = False
        while (ch := self.peek()) is not None:
            if ch == "$":
                if self.i != len(self.text) - 1:
                    raise _Unsupported("$ before the end")
                end = True
                self.i += 1
                break
            chars, negated = self.atom()
            low, high = self.quantifier()
            atoms.append(Atom(chars, negated, low, high))
        return Pattern(tuple(atoms), end)

    def atom(self) -> tuple[frozenset[int], bool]:
        ch = self.take()
        if ch == "[":
            return self.char_class()
        if ch == ".":
            return frozenset({ord("\n")}), True
        if ch == "\\":
            return frozenset({ord(self.escape())}), False
        if (ch in _META and ch not in _PLAIN) or not _printable(ch):
            raise _Unsupported(f"{ch!r} outside a class")
        return frozenset({ord(ch)}), False

    def escape(self) -> str:
        ch = self.take()
        if ch in _META:
            return ch
        if ch in _ESCAPES:
            return _ESCAPES[ch]
        raise _Unsupported(f"escape \\{ch}")

    def class_char(self) -> str:
        ch = self.take()
        if ch == "\\":
            return self.escape()
        if ch in "[]&~-" or not _printable(ch):  # no nested classes, set operations or '--'
            raise _Unsupported(f"{ch!r} in a class")
        return ch

    def char_class(self) -> tuple[frozenset[int], bool]:
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        if self.peek() == "]":
            raise _Unsupported("empty class or leading ]")
        chars: set[int] = set()
        first = True
        while True:
            ch = self.peek()
            if ch == "]":
                self.i += 1
                break
            if ch == "-":
                self.i += 1
                if (first or self.peek() == "]") and self.peek() != "-":
                    chars.add(ord("-"))  # a literal '-' first or last
                    first = False
                    continue
                raise _Unsupported("'-' inside a class")
            lo = self.class_char()
            hi = lo
            if self.peek() == "-" and self.text[self.i + 1 : self.i + 2] not in ("]", ""):
                self.i += 1
                hi = self.class_char()
                if self.peek() == "-" and self.text[self.i + 1 : self.i + 2] != "]":
                    raise _Unsupported("chained range")
                if ord(hi) < ord(lo) or "-" in (lo, hi):
                    raise _Unsupported("reversed range or '-' as an end of a range")
            chars.update(range(ord(lo), ord(hi) + 1))
            first = False
        return frozenset(chars), negated

    def quantifier(self) -> tuple[int, int | None]:
        ch = self.peek()
        if ch not in ("{", "*", "+", "?"):
            return 1, 1
        self.i += 1
        if ch == "*":
            low, high = 0, None
        elif ch == "+":
            low, high = 1, None
        elif ch == "?":
            low, high = 0, 1
        else:
            low = self.number()
            high = low
            if self.peek() == ",":
                self.i += 1
                high = None if self.peek() == "}" else self.number()
            if self.take() != "}" or (high is not None and high < low):
                raise _Unsupported("bad counted repetition")
        if self.peek() in ("{", "*", "+", "?"):
            raise _Unsupported("lazy, possessive or stacked quantifier")
        return low, high

    def number(self) -> int:
        start = self.i
        while (ch := self.peek()) is not None and "0" <= ch <= "9":
            self.i += 1
        digits = self.text[start : self.i]
        if not digits or int(digits) > MAX_COUNT:
            raise _Unsupported("bad repetition count")
        return int(digits)


def _printable(ch: str) -> bool:
    return " " <= ch <= "~"
