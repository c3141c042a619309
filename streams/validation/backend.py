"""The fused engine as the ``validate`` backend of the contract model (see :mod:`streams.contracts.backends`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.contracts.backends import register_backend
from streams.validation.engine import compile_plan

if TYPE_CHECKING:
    import polars as pl

    from streams.contracts.model import Contract
    from streams.validation.engine import CompiledPlan
    from streams.validation.report import ValidationReport

__all__ = ["register_backends", "validate"]


_PLANS: dict[tuple[int, str | None], tuple[Contract, CompiledPlan]] = {}
_PLANS_KEPT = 16


def validate(contract: Contract, df: pl.DataFrame, schema: str | None = None) -> ValidationReport:
    """``contract.validate(df, schema)``: validate one batch with the schema object's plan, compiled
    on the first call for this contract object and kept for the next ones (the last few contracts)."""
    key = (id(contract), schema)
    kept = _PLANS.get(key)
    if kept is None:  # the entry holds the contract: its id is not reused while it is kept
        if len(_PLANS) >= _PLANS_KEPT:
            _PLANS.pop(next(iter(_PLANS)))
        kept = _PLANS[key] = (contract, compile_plan(contract, schema))
    return kept[1].validate(df)


def register_backends() -> None:
    """Register the fused engine as the contract model's ``validate`` backend."""
    register_backend("validate", validate)
