"""What a worker binds per (contract, schema object): the reference, the spec and the judges.

::

    monitor = DriftMonitor.from_contract(contract, "card_transactions")  # None without qstreams.reference
    part = monitor.profile(batch)          # per batch, merged per window like every other partial
    parts = monitor.profile.slices(batch, slice_ids, n)  # the profile of each slice, in one pass
    report = monitor.drift(window_profile) # when the window is final
    models = monitor.models(window_profile)

Loading fails early, at worker start, with :class:`~streams.errors.ProfileError` (a corrupt
reference, or one of another contract or version) or :class:`~streams.errors.ContractError` (bad
``qstreams.*`` properties): the CLI maps both to exit code 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.errors import ContractError
from streams.profiles.drift import DriftConfig, DriftReport, drift_against, parse_override
from streams.profiles.prediction import ModelDrift, ModelDriftConfig, compare_models
from streams.profiles.profile import Profile, empty_profile
from streams.profiles.properties import drift_overrides, reference_path
from streams.profiles.reference import Reference, load_reference
from streams.profiles.slices import SliceProfiler
from streams.profiles.spec import Kind, ProfileSpec

if TYPE_CHECKING:
    from streams.contracts.model import Contract

__all__ = ["DriftMonitor"]


@dataclass(frozen=True)
class DriftMonitor:
    reference: Reference
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    config: DriftConfig = field(default_factory=DriftConfig)
    model_config: ModelDriftConfig = field(default_factory=ModelDriftConfig)

    @property
    def spec(self) -> ProfileSpec:
        return self.reference.spec

    @classmethod
    def from_contract(
        cls, contract: Contract, schema: str | None = None, *, path: str | Path | None = None
    ) -> DriftMonitor | None:
        """The monitor of a schema object, or None when it names no reference (and ``path`` is None)."""
        obj = contract.schema(schema)
        where = Path(path) if path is not None else reference_path(contract, obj.name)
        if where is None:
            return None
        reference = load_reference(where, contract=contract, schema=obj.name)
        overrides = drift_overrides(contract, obj.name)
        kinds = {f.name: f.kind for f in reference.spec.fields}
        for name, raw in overrides.items():
            if name not in kinds:
                raise ContractError(
                    f"qstreams.drift is set on {name!r}, which the reference does not profile "
                    "(identifiers, redacted and temporal fields are not profiled)",
                    path=contract.path,
                )
            try:
                parse_override(name, raw, "numeric" if kinds[name] is Kind.NUMERIC else "categorical")
            except ValueError as exc:
                raise ContractError(str(exc), path=contract.path) from None
        return cls(reference, overrides)

    @property
    def profile(self) -> SliceProfiler:
        """Callable on a frame (its profile); ``.slices(frame, slice_ids, n)`` profiles many slices at once."""
        return SliceProfiler(self.spec)

    def empty(self) -> Profile:
        return empty_profile(self.spec)

    def drift(self, current: Profile) -> DriftReport:
        return drift_against(self.reference, current, overrides=self.overrides, config=self.config)

    def models(self, current: Profile) -> tuple[ModelDrift, ...]:
        return compare_models(self.reference.profile.models, current.models, self.model_config)
