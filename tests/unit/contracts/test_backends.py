"""The contract model is the API; the engine and the pandera mapping are backends registered above it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from streams.contracts import backends
from streams.contracts.loader import load_contract
from streams.errors import ContractError
from streams.validation import ValidationReport, compile_plan

ROOT = Path(__file__).resolve().parents[3]
FEATURES = ROOT / "contracts" / "card_transactions.odcs.yaml"


@pytest.fixture
def registry() -> Iterator[dict[str, Any]]:
    """The backend registry, restored after the test."""
    saved = dict(backends._REGISTRY)
    yield backends._REGISTRY
    backends._REGISTRY.clear()
    backends._REGISTRY.update(saved)


def test_importing_the_model_imports_no_backend() -> None:
    code = (
        "import sys, streams.contracts.model, streams.contracts.loader\n"
        "print(sorted(m for m in sys.modules if m.startswith(('streams.validation', 'pandera'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_default_backends_register_on_first_use(registry: dict[str, Any]) -> None:
    registry.clear()
    contract = load_contract(FEATURES)
    df = pl.DataFrame({"amount": [1.0]})
    report = contract.validate(df)
    assert isinstance(report, ValidationReport)
    expected = compile_plan(contract).validate(df)
    assert (report.rows, report.valid_rows, report.passed) == (expected.rows, expected.valid_rows, expected.passed)
    assert [c.name for c in report.checks] == [c.name for c in expected.checks]
    assert set(registry) == {"validate"}
    schema = contract.to_pandera()
    assert set(registry) == {"validate", "pandera"}
    assert type(schema).__name__ == "DataFrameSchema" and schema.title == contract.schema().name


def test_a_registered_backend_replaces_the_default(registry: dict[str, Any]) -> None:
    calls: list[tuple[Any, ...]] = []
    backends.register_backend("validate", lambda contract, df, schema: calls.append((contract.id, df.height, schema)))
    contract = load_contract(FEATURES)
    contract.validate(pl.DataFrame({"a": [1, 2]}), "card_transactions")
    assert calls == [(contract.id, 2, "card_transactions")]


def test_an_unknown_kind_is_a_contract_error(registry: dict[str, Any]) -> None:
    with pytest.raises(ContractError, match="backend of kind 'spark'; the known kinds are: pandera, validate"):
        backends.get_backend("spark")


def test_the_old_pandera_module_still_resolves() -> None:
    from streams.contracts import pandera_backend
    from streams.validation import pandera

    assert pandera_backend.to_pandera is pandera.to_pandera
    assert pandera_backend.from_pandera is pandera.from_pandera
    with pytest.raises(AttributeError, match=r"now streams\.validation\.pandera"):
        _ = pandera_backend.nope
