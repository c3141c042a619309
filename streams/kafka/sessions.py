"""Keeping a stateful Kafka agent running: sessions rebuilt from their state topic after a failure.

The policy agent (:mod:`streams.policies.runner`) and the labels joiner
(:mod:`streams.performance.runner`) each run one *session* at a time: clients started, state restored
from a compacted topic, then one step (a poll, its transaction) after another. A broker or network
failure ends the session; :func:`run_sessions` closes it, waits (exponential backoff, 1 s doubling up to
30 s, cut short by ``stop``) and starts a new one, which restores what the last committed transaction
left. Anything else (a bad setting, a bug) propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from streams.errors import BrokerError

log = logging.getLogger(__name__)

__all__ = ["Session", "run_sessions"]


class Session(Protocol):
    async def start(self) -> None: ...
    async def step(self) -> None: ...
    async def close(self) -> None: ...


S = TypeVar("S", bound=Session)


async def run_sessions(
    new_session: Callable[[], S],
    *,
    stop: asyncio.Event,
    name: str,
    prepare: Callable[[], Awaitable[object]] | None = None,
    on_ready: Callable[[S], None] | None = None,
) -> None:
    """Run sessions of ``new_session()`` until ``stop`` is set (see the module docstring).

    ``prepare`` runs before each session starts (creating its topics); ``on_ready`` once each has started.
    """
    from aiokafka.errors import KafkaError

    attempt = 0
    while not stop.is_set():
        session = new_session()
        try:
            if prepare is not None:
                await prepare()
            await session.start()
            attempt = 0
            if on_ready is not None:
                on_ready(session)
            while not stop.is_set():
                await session.step()
        except (KafkaError, OSError, BrokerError) as exc:
            attempt += 1
            delay = min(0.5 * 2**attempt, 30.0)
            log.warning("%s session failed (%s: %s); restoring from the state topic in %.1fs",
                        name, type(exc).__name__, exc, delay)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        finally:
            await session.close()
