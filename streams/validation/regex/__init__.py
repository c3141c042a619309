"""Exact non-regex polars expressions for simple anchored patterns (the regex fast path).

``fast_contains(c, pattern)`` returns an expression equal to ``c.str.contains(pattern)``
on every String value (null stays null) or None when ``pattern`` is outside the subset
analyzed here; callers then use the regex. The subset, parsed by a small strict parser
(anything it does not know is a fallback, never a guess):

* ``^`` at the start (required), optionally ``$`` at the very end; ``$`` is Rust's: the
  end of the text only (``"1234\\n"`` does not match ``^[0-9]{4}$``);
* atoms: printable ASCII literals, escaped meta characters (``\\.``, ``\\-``, ...),
  ``\\n``, ``\\t``, ``\\r``, ``.`` and ASCII classes ``[a-f0-9_]`` / ``[^@ ]`` (ranges and
  single characters; no ``\\d``/``\\w``/``\\s``, which are Unicode-aware in Rust, no nested
  classes or set operations);
* quantifiers ``{n}``, ``{m,}``, ``{m,n}``, ``*``, ``+``, ``?`` (greedy only).

No groups, alternation, lookarounds, flags or non-ASCII literals. Without ``$`` a match
is a prefix match, so the last atom only needs its minimum repetitions. Strategies:

* only literals: ``c == "..."`` (with ``$``) or ``c.str.starts_with("...")``;
* fixed width ``n`` (every atom a positive class or literal repeated exactly; bounded
  repetitions expand into at most ``MAX_EXPANSIONS`` fixed widths, any of which may
  match): the string's bytes reinterpreted as ``Array(UInt8, n)`` (null unless exactly
  ``n`` bytes, so a non-ASCII character never passes) and the bytes outside the set of
  the most common position counted; the other positions (at most ``MAX_OTHERS``) are
  read with a stride from the flattened bytes. Their sets must be subsets of, or
  disjoint from, the common set: as many bytes outside the common set as disjoint
  positions, each holding one of its own set, leaves the common set to all others;
* one negated class or ``.`` with any repetition, anchored at both ends:
  ``len_chars`` in range and none of the excluded characters (``contains_any``).

A pattern the Rust engine rejects (too large, ...) always falls back, so errors are
those of the regex. Byte arrays have a fixed cost (~0.1-0.3 ms a batch), so they are
used from ``min_rows`` rows on, and built in slices of a few MB on large batches.
Single-threaded, at 100k rows: ``^[0-9a-f]{64}$`` 11 ms -> 2.2 ms, the UUID pattern
6.3 ms -> 3.4 ms, ``^[0-9]{4}$`` 1.8 ms -> 0.5 ms; at 1M rows 110 -> 29 ms, 61 -> 51 ms
and 18 -> 4 ms.
"""

from __future__ import annotations

from streams.validation.regex.parser import Atom, Pattern, parse
from streams.validation.regex.strategies import FastPath, fast_contains, strategy

__all__ = ["Atom", "FastPath", "Pattern", "fast_contains", "parse", "strategy"]
