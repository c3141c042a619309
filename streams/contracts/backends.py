"""The backends that execute a contract, registered by the packages that implement them.

``streams.contracts`` is the API (the model of a contract, like pandera's ``api/``); the
code that runs a contract lives above it, in :mod:`streams.validation` (like pandera's
``backends/``), and contracts never import it. A backend is a function registered under
a *kind*:

* ``"validate"``: ``(contract, df, schema) -> ValidationReport``, the fused polars engine
  (:func:`streams.validation.register_backends`), behind :meth:`Contract.validate`;
* ``"pandera"``: ``(schema_obj, contract) -> pandera.polars.DataFrameSchema``, the
  pandera mapping (:func:`streams.validation.pandera.register_backends`), behind
  :meth:`Contract.to_pandera`.

As in pandera (``get_backend`` calling ``register_default_backends`` on a miss), the
default backends are registered lazily: the first lookup of a kind imports the module
named in :data:`DEFAULT_BACKENDS` (a string, so contracts hold no import of it) and calls
its ``register_backends()``. :func:`register_backend` replaces a backend (e.g. in a test).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from streams.errors import BackendNotFoundError

__all__ = ["DEFAULT_BACKENDS", "BackendNotFoundError", "get_backend", "register_backend"]

Backend = Callable[..., Any]

#: kind -> the module whose ``register_backends()`` registers the default backend of that kind.
DEFAULT_BACKENDS: dict[str, str] = {
    "validate": "streams.validation",
    "pandera": "streams.validation.pandera",
}

_REGISTRY: dict[str, Backend] = {}


def register_backend(kind: str, backend: Backend) -> None:
    """Make ``backend`` the one that executes contracts for ``kind`` (replacing any other)."""
    _REGISTRY[kind] = backend


def get_backend(kind: str) -> Backend:
    """The backend registered for ``kind``, registering the default one on first use."""
    backend = _REGISTRY.get(kind)
    if backend is not None:
        return backend
    module = DEFAULT_BACKENDS.get(kind)
    if module is None:
        known = ", ".join(sorted(DEFAULT_BACKENDS))
        raise BackendNotFoundError(f"There is no contract backend of kind {kind!r}; the known kinds are: {known}.")
    importlib.import_module(module).register_backends()
    backend = _REGISTRY.get(kind)
    if backend is None:
        raise BackendNotFoundError(
            f"{module}.register_backends() did not register a backend of kind {kind!r}; "
            "the module is probably out of date with streams.contracts.backends."
        )
    return backend
