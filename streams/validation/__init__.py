"""Batch validation: the fused polars engine and the reports it produces.

``compile_plan(contract, schema)`` compiles one schema object once;
``plan.validate(df)`` returns a :class:`ValidationReport` per batch and never
raises on bad data. The engine is the ``validate`` backend of the contract model
(:meth:`streams.contracts.model.Contract.validate`), registered by
:func:`register_backends`; the pandera mapping, the semantic reference, is the
``pandera`` backend (:mod:`streams.validation.pandera`).
"""

from __future__ import annotations

from streams.validation.backend import register_backends
from streams.validation.engine import CompiledPlan, compile_plan
from streams.validation.report import CheckResult, ValidationReport

__all__ = ["CheckResult", "CompiledPlan", "ValidationReport", "compile_plan", "register_backends"]
