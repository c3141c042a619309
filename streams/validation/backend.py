"""The fused engine as the ``validate`` backend of the contract model (see :mod:`streams.contracts.backends`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.contracts.backends import register_backend
from streams.validation.engine import compile_plan

if TYPE_CHECKING:
    import polars as pl

    from streams.contracts.model import Contract
    from streams.validation.report import ValidationReport

__all__ = ["register_backends", "validate"]


def validate(contract: Contract, df: pl.DataFrame, schema: str | None = None) -> ValidationReport:
    """``contract.validate(df, schema)``: compile the schema object and validate one batch."""
    return compile_plan(contract, schema).validate(df)


def register_backends() -> None:
    """Register the fused engine as the contract model's ``validate`` backend."""
    register_backend("validate", validate)
