"""Semantic versions of contracts, and which bump a set of changes requires.

A contract's ``version`` is read as `Semantic Versioning 2.0.0 <https://semver.org>`_
(``MAJOR.MINOR.PATCH``, an optional ``-pre.release`` and ``+build``; a leading ``v`` is
accepted). Precedence follows semver: build metadata is ignored, a pre-release sorts
before its release.

The bump a change requires is one of :class:`Bump` (see ``docs/contracts-diff.md``, "The semver
check"): a **breaking** change (for producers or consumers) requires ``major``, a compatible
change to what is checked or bound requires ``minor``, a change of metadata only (owners,
descriptions, SLAs, policies) requires ``patch``. Below ``1.0.0`` semver promises no
stability; we follow Cargo's convention there: in ``0.y.z`` a breaking change requires a
``minor`` bump, anything else a ``patch`` bump.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = ["Bump", "SemverCheck", "Version", "check_bump", "parse_version"]

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


class Bump(enum.IntEnum):
    """How much a version went up (or must go up); ordered, so ``max()`` of requirements works."""

    NONE = 0
    PATCH = 1
    MINOR = 2
    MAJOR = 3

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True, order=False)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()
    text: str = ""

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        """A sort key with semver precedence (a release after its pre-releases; numeric ids before alphanumeric)."""
        pre = tuple((0, p) if isinstance(p, int) else (1, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __str__(self) -> str:
        return self.text or f"{self.major}.{self.minor}.{self.patch}"


def parse_version(text: str) -> Version | None:
    """The semantic version in ``text``, or None when it is not one."""
    m = _SEMVER.match(text.strip())
    if m is None:
        return None
    pre = tuple(int(p) if p.isdigit() else p for p in m.group(4).split(".")) if m.group(4) else ()
    return Version(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, text.strip())


def bump_between(old: Version, new: Version) -> Bump | None:
    """The bump from ``old`` to ``new``; None when ``new`` does not come after ``old``."""
    if new.key() <= old.key():
        return None
    if new.major != old.major:
        return Bump.MAJOR
    if new.minor != old.minor:
        return Bump.MINOR
    return Bump.PATCH  # a patch step, or a pre-release moving on within the same release


def effective(required: Bump, old: Version) -> Bump:
    """``required`` under Cargo's convention for ``0.y.z``: breaking needs minor, the rest patch."""
    if old.major == 0 and required is not Bump.NONE:
        return Bump.MINOR if required is Bump.MAJOR else Bump.PATCH
    return required


@dataclass(frozen=True, slots=True)
class SemverCheck:
    """Whether ``new``'s version is a large enough step from ``old``'s for the changes between them."""

    ok: bool
    required: Bump
    actual: Bump | None
    message: str


def check_bump(old_text: str, new_text: str, required: Bump, changed: bool) -> SemverCheck:
    """Check the version step ``old_text`` → ``new_text`` against the ``required`` bump.

    ``changed``: the documents differ at all (their sha256). An unchanged document may keep its
    version; a changed one must move it forward by at least ``required`` (``patch`` at least).
    """
    old, new = parse_version(old_text), parse_version(new_text)
    for text, v in ((old_text, old), (new_text, new)):
        if v is None:
            return SemverCheck(
                False, required, None,
                f"version {text!r} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.4.0), so the step "
                "cannot be checked",
            )  # fmt: skip
    assert old is not None and new is not None
    if not changed and old.key() == new.key():
        return SemverCheck(True, Bump.NONE, Bump.NONE, "the contracts are identical and so are their versions")
    needed = max(effective(required, old), Bump.PATCH) if changed else effective(required, old)
    actual = bump_between(old, new)
    if actual is None:
        how = "the same version as" if old.key() == new.key() else "lower than"
        what = "the contract changed but" if changed else "the"
        return SemverCheck(
            False, needed, None,
            f"{what} version {new} is {how} {old}; it needs at least a {max(needed, Bump.PATCH)} bump",
        )  # fmt: skip
    if actual < needed:
        zero = " (a 0.y.z version: breaking changes need a minor bump)" if old.major == 0 else ""
        return SemverCheck(
            False, needed, actual,
            f"{old} → {new} is a {actual} bump, but the changes require a {needed} bump{zero}",
        )  # fmt: skip
    return SemverCheck(True, needed, actual, f"{old} → {new} is a {actual} bump; the changes require {needed}")
