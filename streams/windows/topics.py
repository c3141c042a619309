"""Names, keys and partitions of the stream-time topics (pure: no Kafka client here).

* ``<app_id>.stream-time`` (compacted): window partials, heartbeats and ``closed`` markers
  (:mod:`.codec`); every record of one stream (contract id, schema object, source topic)
  goes to one partition, :func:`stream_partition`.
* ``<app_id>.unique-changelog`` (compacted): uniqueness claims (:mod:`.unique`), keyed
  ``<contract>|<schema>|<topic>|<column>|<source partition>|<bucket>/<seq>``, in the
  stream's partition too.

The merger of a stream runs on the worker that consumes partition 0 of its source topic
(the group's assignment decides, so exactly one worker merges it at a time).
"""

from __future__ import annotations

import hashlib

import orjson

__all__ = [
    "CHANGELOG_SUFFIX",
    "MERGER_PARTITION",
    "STATE_SUFFIX",
    "changelog_key",
    "changelog_topic",
    "parse_changelog_key",
    "state_topic",
    "stream_partition",
]

STATE_SUFFIX = ".stream-time"
CHANGELOG_SUFFIX = ".unique-changelog"
#: The source partition whose consumer merges and finalizes the stream's windows.
MERGER_PARTITION = 0


def state_topic(app_id: str) -> str:
    return app_id + STATE_SUFFIX


def changelog_topic(app_id: str) -> str:
    return app_id + CHANGELOG_SUFFIX


def stream_partition(contract_id: str, schema: str, topic: str, partitions: int) -> int:
    """The partition of the stream-time topics holding one stream's records (stable across versions)."""
    digest = hashlib.sha256(orjson.dumps([contract_id, schema, topic])).digest()
    return int.from_bytes(digest[:8], "big") % max(partitions, 1)


def changelog_key(contract_id: str, schema: str, topic: str, column: str, partition: int, chunk_key: str) -> bytes:
    return "|".join((contract_id, schema, topic, column, str(partition), chunk_key)).encode("utf-8")


def parse_changelog_key(key: bytes | None) -> tuple[tuple[str, str, str, str, int], str] | None:
    """``((contract, schema, topic, column, partition), chunk key)`` or None when the key is not one of ours."""
    if not key:
        return None
    try:
        contract_id, schema, topic, column, partition, chunk = key.decode("utf-8").rsplit("|", 5)
        return (contract_id, schema, topic, column, int(partition)), chunk
    except ValueError:
        return None
