"""One-way layers for the packages split out of ``streams/kafka``: a lower layer never imports a higher one.

contracts → validation → formats → pipeline → kafka → (windows) → events → consumers; the tools
(``dev``, ``testing``, ``cli``, ``demo``) sit on top and the runtime never imports them. Every
import counts, module-level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "streams"
LEVEL = {
    "errors": 0, "settings": 0, "contracts": 1, "validation": 2, "formats": 3, "pipeline": 4,
    "observability": 5, "kafka": 5, "windows": 6, "events": 7, "consumers": 8,
    "dev": 9, "testing": 9, "cli": 10, "demo": 10,
}  # fmt: skip
CHECKED = ("formats", "pipeline", "kafka", "dev", "testing", "settings", "observability")
#: known upward imports, to be removed: the pipeline builds quality events (streams.events, owned elsewhere)
KNOWN = {("pipeline", "events"), ("observability", "events")}


def _layer(module: str) -> str:
    return module.split(".")[1] if module.startswith("streams.") else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, m) for line, m in found if m.startswith("streams.")]


def _files(layer: str) -> list[Path]:
    single = PACKAGE / f"{layer}.py"
    return [single] if single.exists() else sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", CHECKED)
def test_no_layer_imports_a_higher_one(layer: str) -> None:
    files = _files(layer)
    assert files, f"no module found for layer {layer}"
    upward = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in files
        for line, module in _imports(path)
        if LEVEL[_layer(module)] > LEVEL[layer] and (layer, _layer(module)) not in KNOWN
    ]
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from streams.kafka.batches import BatchWorker\n")
    assert [LEVEL[_layer(m)] > LEVEL["pipeline"] for _, m in _imports(bad)] == [True]
