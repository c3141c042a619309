"""The pandera mapping as the ``pandera`` backend of the contract model (see :mod:`streams.contracts.backends`)."""

from __future__ import annotations

from streams.contracts.backends import register_backend
from streams.validation.pandera.schema import to_pandera

__all__ = ["register_backends"]


def register_backends() -> None:
    """Register :func:`~streams.validation.pandera.to_pandera` as the contract model's ``pandera`` backend."""
    register_backend("pandera", to_pandera)
