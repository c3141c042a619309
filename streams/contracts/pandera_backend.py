"""Old location of the pandera mapping, kept as an alias: use :mod:`streams.validation.pandera`.

The mapping runs contracts, so it is a backend above the contract model
(:mod:`streams.contracts.backends`). This alias resolves its names lazily, by module
path, so that ``streams.contracts`` keeps importing nothing above it; it stays until
``streams.cli.main`` and user code import from the new place.
"""

from __future__ import annotations

import importlib
from typing import Any

_NEW_HOME = "streams.validation.pandera"
_NAMES = frozenset(
    {"BUILTINS", "MARKER", "ThresholdBreach", "from_pandera", "ir_sha256", "load_pandera_object", "to_pandera"}
)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NEW_HOME), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; the pandera mapping is now {_NEW_HOME}")
