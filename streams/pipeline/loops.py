"""Bindings that would loop: a contract bound to a worker's own output (its events topic, or a
``.validated`` / ``.quarantine`` / ``.dlq`` topic) makes the worker validate what it wrote.

Used by ``contracts lint`` (:mod:`streams.lint`) and by the worker at start (exit 2).
"""

from __future__ import annotations

from streams.contracts.loader import Finding
from streams.contracts.model import Contract
from streams.settings import Settings

__all__ = ["loop_reason", "own_topics"]


def own_topics(contract: Contract, settings: Settings | None = None) -> list[Finding]:
    """A schema object bound to the worker's events topic or to an output topic (``.validated``,
    ``.quarantine``, ``.dlq``) would make the worker validate its own output, in a loop.

    ``settings`` (the worker's) default to the environment's; the worker refuses such a contract at start.
    """
    if settings is None:
        try:
            settings = Settings()
        except Exception:  # an invalid environment is reported by the worker; lint checks the defaults
            settings = Settings.model_construct()
    out: list[Finding] = []
    for schema in contract.schemas:
        topic = schema.topic
        why = loop_reason(settings, topic)
        if why is None:
            continue
        out.append(
            Finding(
                contract.path or "<contract>",
                schema.line,
                f"schema object {schema.name!r} is bound to topic {topic!r}, {why}; the worker would validate "
                "its own output in a loop (bind the source topic instead)",
            )
        )
    return out


def loop_reason(settings: Settings, topic: str) -> str | None:
    """Why binding ``topic`` would make a worker validate its own output (None when it would not).

    The events topic and any ``.validated`` / ``.quarantine`` / ``.dlq`` topic (the settings' suffixes) are
    outputs of a worker: one record there becomes events about events, growing without end.
    """
    suffixes = (settings.validated_suffix, settings.quarantine_suffix, settings.dlq_suffix)
    if topic == settings.events_topic:
        return "the worker's quality-events topic"
    if topic.endswith(suffixes):
        return f"an output topic of the worker (it ends with {next(x for x in suffixes if topic.endswith(x))!r})"
    return None
