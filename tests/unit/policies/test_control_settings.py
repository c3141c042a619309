"""The control observer's waits are settings (``STREAMS_CONTROL_*``), read by the worker's observers.

Before, the retry wait (1 s doubling to 30 s), the catch-up wait (15 s) and the partition refresh (60 s) of
:class:`~streams.policies.control.ControlObserver` were constants of its constructor that the worker never
set: an operator could not shorten them for a test cluster or lengthen them for a flaky one.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from streams.cli.policies import worker_observers
from streams.errors import SettingsError
from streams.policies.control import ControlObserver, ControlState
from streams.settings import Settings, load_settings
from tests.unit.policies.test_control_observer import Broker, FakeConsumer, until

ROOT = Path(__file__).resolve().parents[3]


def test_the_worker_control_observer_waits_as_the_settings_say(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_CONTROL_BACKOFF_S", "0.25")
    monkeypatch.setenv("STREAMS_CONTROL_MAX_BACKOFF_S", "2")
    monkeypatch.setenv("STREAMS_CONTROL_CATCH_UP_S", "0")
    monkeypatch.setenv("STREAMS_CONTROL_REFRESH_S", "7")
    settings = load_settings(stream_time=False)
    (obs,) = [o for o in worker_observers(settings, [], "w1") if isinstance(o, ControlObserver)]
    assert (obs.catch_up_s, obs.refresh_s) == (0.0, 7.0)
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        await asyncio.sleep(0)

    broker = Broker()  # the control topic does not exist: retried with backoff
    obs.factory, obs.sleep, obs.prepare = (lambda: FakeConsumer(broker)), sleep, None

    async def scenario() -> None:
        await obs.on_start(None)  # type: ignore[arg-type]
        await until(lambda: len(sleeps) >= 6)
        assert obs.state is ControlState.UNREADABLE
        await obs.on_stopping()

    asyncio.run(scenario())
    assert sleeps[:6] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_a_longest_wait_below_the_first_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_CONTROL_BACKOFF_S", "5")
    monkeypatch.setenv("STREAMS_CONTROL_MAX_BACKOFF_S", "2")
    with pytest.raises(SettingsError, match=r"STREAMS_CONTROL_MAX_BACKOFF_S .*at least STREAMS_CONTROL_BACKOFF_S"):
        load_settings()


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :].split("\n## ", 1)[0]
    named = set(re.findall(r"`(?:STREAMS)?(_[A-Z0-9_]+)`", table))
    missing = [n for n in Settings.model_fields if f"_{n.upper()}" not in named]
    assert missing == []
