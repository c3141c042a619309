"""pandera, the semantic reference, in both directions: a backend of the contract model.

* :func:`to_pandera` (:mod:`.schema`) turns a schema object of the rule IR into a
  ``pandera.polars.DataFrameSchema``. Each rule sits where
  :func:`streams.validation.predicates.rule_layout` puts it, so pandera's
  ``check_number`` matches the fused engine's: the dtype, ``nullable`` and
  ``unique`` of a Column; a Column ``Check`` (element-wise built-in, or a custom
  check sharing the engine's predicate) for zero-tolerance column rules; a
  DataFrameSchema ``Check`` for expression rules (a row-wise boolean frame) and
  for thresholded rules and batch metrics (True, or a :class:`ThresholdBreach`
  carrying the metric: pandera 0.35 crashes when a scalar ``False`` failure case
  meets string ones under ``lazy=True``). Every check's
  ``error`` is the rule's ``check`` string; rules of warning/info severity use
  ``raise_warning=True``. Governance metadata goes into ``metadata=``. The checks
  themselves are built in :mod:`.checks`.
* :func:`from_pandera` (:mod:`.reader`) reads a pandera-native contract (a
  ``DataFrameSchema`` or a ``DataFrameModel`` class) into the IR, recognizing built-in
  checks by their ``name`` and ``statistics``; anything else raises
  :class:`~streams.errors.UnsupportedRuleError`.
* :func:`load_pandera_object` imports such an object from ``"module:attr"``. It
  runs that module's code, so it is **opt-in and for trusted code only**.

:func:`register_backends` registers :func:`to_pandera` as the ``pandera`` backend of
:meth:`streams.contracts.model.Contract.to_pandera` (see :mod:`streams.contracts.backends`).
"""

from __future__ import annotations

from streams.validation.pandera.backend import register_backends
from streams.validation.pandera.checks import BUILTINS, MARKER, ThresholdBreach
from streams.validation.pandera.reader import from_pandera, ir_sha256, load_pandera_object
from streams.validation.pandera.schema import to_pandera

__all__ = [
    "BUILTINS",
    "MARKER",
    "ThresholdBreach",
    "from_pandera",
    "ir_sha256",
    "load_pandera_object",
    "register_backends",
    "to_pandera",
]
