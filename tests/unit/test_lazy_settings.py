"""``import streams`` does not import the settings (pydantic-settings, about 0.1 s of every CLI start): ``validate``
never reads them (``lint`` does, for the worker's own topics). ``streams.Settings`` and ``streams.Mode`` are
imported on first use, the same objects as before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import streams

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_starts_and_validates_without_the_settings() -> None:
    contract = ROOT / "contracts" / "card_transactions.odcs.yaml"
    code = (
        "import sys\nimport polars as pl\nimport streams.cli.main\nfrom streams import load_contract\n"
        "before = 'streams.settings' in sys.modules\n"
        f"c = load_contract({str(contract)!r})\n"
        "report = c.validate(pl.DataFrame(schema=c.schemas[0].polars_schema), c.schemas[0].name)\n"
        "print(before, 'streams.settings' in sys.modules, report.rows)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False", "0"], out.stderr


def test_the_settings_names_are_the_settings_module_s() -> None:
    from streams import Mode, Settings
    from streams.settings import Mode as SettingsMode
    from streams.settings import Settings as SettingsClass

    assert (Mode, Settings) == (SettingsMode, SettingsClass)
    assert {"Mode", "Settings"} <= set(dir(streams)) and {"Mode", "Settings"} <= set(streams.__all__)
