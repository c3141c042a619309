"""The audit archive: quality events kept as date/contract-partitioned Parquet, idempotent and resumable.

Layout of an archive directory::

    DIR/
      date=2026-12-02/contract=card-transactions/part-<topic>-<partition>-<first offset>-<uid>.parquet
      _offsets.json         the next offset to read per (topic, partition); written after the data
      .lock                 held (flock) by the one archiver writing here

One row per event (:data:`COLUMNS`): the CloudEvent's attributes, a few fields of its data lifted
into columns (``schema``, ``window_start``, ``window_end``), the data itself as JSON text, and
where it came from (``kafka_topic``, ``kafka_partition``, ``kafka_offset``).

**Idempotent on the event id.** The ids of every archived event are read when the archive opens;
an event whose id is already archived (a replay, an event published again after a crash) is
skipped, so each id is in the archive once.

**Resumable.** :meth:`Archive.ingest` writes a batch's files to ``_tmp/``, fsyncs them, renames
them into place and fsyncs the directories, and only then advances the offsets in
``_offsets.json`` (itself written to a temporary file, fsynced and renamed). A crash anywhere
leaves either the old offsets (the batch is read again; its events already in place are skipped
by id) or the new ones with every file of the batch in place. Nothing is lost, nothing doubled.

**Retention.** With ``retention_days``, date partitions older than that (UTC days, by the event's
``time``) are deleted, and events older than the cutoff are not archived.

Pure of Kafka: feed :class:`RawRecord` objects (the Kafka loop is :mod:`streams.governance.consume`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import orjson
import polars as pl

from streams.errors import ArchiveError
from streams.events.codec import event_data, from_kafka
from streams.events.types import parse_utc, to_utc

__all__ = ["COLUMNS", "Archive", "IngestResult", "RawRecord", "read_archive"]

log = logging.getLogger(__name__)

OFFSETS_FILE: Final = "_offsets.json"
_TMP: Final = "_tmp"
_UTC = pl.Datetime("us", "UTC")
#: The columns of every archive file, in order.
COLUMNS: Final[dict[str, pl.DataType]] = {
    "id": pl.String(),
    "type": pl.String(),
    "source": pl.String(),
    "subject": pl.String(),
    "time": _UTC,
    "severity": pl.String(),
    "contract_id": pl.String(),
    "contract_version": pl.String(),
    "contract_sha256": pl.String(),
    "rule": pl.String(),
    "schema": pl.String(),
    "window_start": _UTC,
    "window_end": _UTC,
    "data": pl.String(),
    "kafka_topic": pl.String(),
    "kafka_partition": pl.Int32(),
    "kafka_offset": pl.Int64(),
    "archived_at": _UTC,
}
NO_CONTRACT: Final = "_none"
#: the longest percent-encoded contract id and topic put into a directory / file name (255 bytes at most:
#: ``contract=`` + id; ``part-`` + topic + partition, offset, uid and ``.parquet``)
_MAX_CONTRACT: Final = 255 - len("contract=")
_MAX_TOPIC: Final = 200


def _name(text: str, limit: int = _MAX_CONTRACT) -> str:
    """``text`` percent-encoded for a path; when longer than ``limit``, cut there and suffixed with ``~`` and 16
    hex digits of its SHA-256 (an id of 64 non-ASCII characters encodes to 300 bytes: a file name too long for
    the file system, which stopped the archiver on that record, at every restart). Names that fit are as before."""
    quoted = quote(text, safe="")
    if len(quoted) <= limit:
        return quoted
    head = quoted[: limit - 17]
    head = head[: head.rfind("%")] if "%" in head[-2:] else head  # no escape cut in two
    return f"{head}~{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One Kafka record of the quality-event topic, as any client gives it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] = ()


@dataclass(slots=True)
class IngestResult:
    """What one :meth:`Archive.ingest` call did."""

    archived: int = 0
    duplicates: int = 0
    malformed: int = 0
    expired: int = 0
    files: list[Path] = field(default_factory=list)
    #: ``(id, type, data as JSON text)`` of each event archived by this call (for observers: lineage, metrics)
    events: list[tuple[str, str, str]] = field(default_factory=list)


def _time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return to_utc(value)
    try:
        return parse_utc(value)
    except ValueError:
        return None


def _row(record: RawRecord, now: dt.datetime) -> dict[str, Any] | None:
    """The archive row of one record; None (with a log line) when it is not a quality event."""
    try:
        event = from_kafka(record.key, record.value, record.headers)
        data = event_data(event)
        when = _time(event.get_time())
        if when is None:
            raise ValueError("it has no time attribute")
    except Exception as exc:  # malformed events are data: skipped with a log line, never a crash
        log.warning(
            "Skipped the record at %s[%d]@%d: not a quality event (%s).",
            record.topic, record.partition, record.offset, exc,
        )  # fmt: skip
        return None
    raw_window = data.get("window")
    window: dict[str, Any] = raw_window if isinstance(raw_window, dict) else {}

    def ext(name: str) -> str | None:
        value = event.get_extension(name)
        return None if value is None else str(value)

    return {
        "id": event.get_id(),
        "type": event.get_type(),
        "source": event.get_source(),
        "subject": event.get_subject(),
        "time": when,
        "severity": ext("severity"),
        "contract_id": ext("contractid"),
        "contract_version": ext("contractversion"),
        "contract_sha256": ext("contractsha256"),
        "rule": ext("rule"),
        "schema": data.get("schema") if isinstance(data.get("schema"), str) else None,
        "window_start": _time(window.get("start")),
        "window_end": _time(window.get("end")),
        "data": orjson.dumps(data).decode(),
        "kafka_topic": record.topic,
        "kafka_partition": record.partition,
        "kafka_offset": record.offset,
        "archived_at": now,
    }


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, payload: bytes) -> None:
    """``payload`` at ``path``, all or nothing: a temporary file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _files(root: Path) -> list[Path]:
    return sorted(root.glob("date=*/contract=*/*.parquet"))


def _partition_date(directory: Path) -> dt.date | None:
    try:
        return dt.date.fromisoformat(directory.name.removeprefix("date="))
    except ValueError:
        return None


class Archive:
    """An archive directory open for writing (one writer at a time: :class:`ArchiveError` otherwise).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, root: str | Path, *, retention_days: int | None = None) -> None:
        if retention_days is not None and retention_days < 1:
            raise ArchiveError(f"The retention must be at least 1 day, got {retention_days}.")
        self.root = Path(root)
        self.retention_days = retention_days
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.root / ".lock", "a+")  # noqa: SIM115 - held until close()
        except OSError as exc:
            raise ArchiveError(f"Cannot open the archive directory {self.root}: {exc}.") from exc
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise ArchiveError(
                f"Another archiver is writing to {self.root} (it holds {self.root / '.lock'}); run one per directory."
            ) from None
        shutil.rmtree(self.root / _TMP, ignore_errors=True)  # files of a batch a crash interrupted
        self.offsets = self._read_offsets()
        self.apply_retention()
        self._ids = self._read_ids()

    # --- state ---------------------------------------------------------------------------------------------
    def _read_offsets(self) -> dict[tuple[str, int], int]:
        path = self.root / OFFSETS_FILE
        if not path.exists():
            return {}
        try:
            doc = orjson.loads(path.read_bytes())
            return {(t, int(p)): int(o) for t, parts in doc["topics"].items() for p, o in parts.items()}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArchiveError(
                f"The offsets file {path} is corrupt ({exc}); move it away to re-read the topic from the start "
                "(archived events are not doubled: they are recognised by id)."
            ) from exc

    def _write_offsets(self) -> None:
        topics: dict[str, dict[str, int]] = {}
        for (topic, partition), offset in sorted(self.offsets.items()):
            topics.setdefault(topic, {})[str(partition)] = offset
        _write_durably(self.root / OFFSETS_FILE, orjson.dumps({"version": 1, "topics": topics}))

    def _read_ids(self) -> set[str]:
        files = _files(self.root)
        if not files:
            return set()
        try:
            ids = pl.scan_parquet(files, hive_partitioning=False).select("id").collect()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise ArchiveError(f"Cannot read the event ids of the archive {self.root}: {exc}.") from exc
        return set(ids["id"].to_list())

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def next_offset(self, topic: str, partition: int) -> int | None:
        """Where to resume reading ``topic[partition]`` (None: never read; start at the beginning)."""
        return self.offsets.get((topic, partition))

    # --- writing -------------------------------------------------------------------------------------------
    def cutoff(self, now: dt.datetime | None = None) -> dt.date | None:
        """The oldest UTC day kept (None without retention)."""
        if self.retention_days is None:
            return None
        today = to_utc(now or dt.datetime.now(dt.UTC)).date()
        return today - dt.timedelta(days=self.retention_days - 1)

    def ingest(self, records: Iterable[RawRecord], *, now: dt.datetime | None = None) -> IngestResult:
        """Archive a batch of records; then advance the offsets past every record of it."""
        now = to_utc(now or dt.datetime.now(dt.UTC))
        cutoff = self.cutoff(now)
        result = IngestResult()
        rows: list[dict[str, Any]] = []
        batch_ids: set[str] = set()
        ends: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            ends[key] = max(ends.get(key, -1), record.offset + 1)
            row = _row(record, now)
            if row is None:
                result.malformed += 1
            elif row["id"] in self._ids or row["id"] in batch_ids:
                result.duplicates += 1
            elif cutoff is not None and row["time"].date() < cutoff:
                result.expired += 1
            else:
                batch_ids.add(row["id"])
                rows.append(row)
        if rows:
            result.files = self._write_rows(rows)
            self._ids |= batch_ids
            result.archived = len(rows)
            result.events = [(r["id"], r["type"], r["data"]) for r in rows]
        advanced = {k: v for k, v in ends.items() if v > self.offsets.get(k, -1)}
        if advanced:
            self.offsets.update(advanced)
            self._write_offsets()  # only now: every file of the batch is in place
        return result

    def _write_rows(self, rows: list[dict[str, Any]]) -> list[Path]:
        frame = pl.DataFrame(rows, schema=COLUMNS)
        frame = frame.with_columns(
            pl.col("time").dt.date().cast(pl.String).alias("_date"),
            pl.col("contract_id").fill_null(NO_CONTRACT).alias("_contract"),
        )
        tmp_dir = self.root / _TMP
        tmp_dir.mkdir(exist_ok=True)
        staged: list[tuple[Path, Path]] = []
        for (day, contract), group in frame.group_by("_date", "_contract", maintain_order=True):
            first = group.sort("kafka_partition", "kafka_offset").row(0, named=True)
            directory = self.root / f"date={day}" / f"contract={_name(str(contract))}"
            name = f"part-{_name(first['kafka_topic'], _MAX_TOPIC)}-{first['kafka_partition']}-{first['kafka_offset']}"
            target = directory / f"{name}-{uuid.uuid4().hex[:8]}.parquet"
            tmp = tmp_dir / target.name
            with open(tmp, "wb") as fh:
                group.drop("_date", "_contract").sort("time", "id").write_parquet(fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            staged.append((tmp, target))
        for tmp, target in staged:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        for directory in {t.parent for _, t in staged} | {t.parent.parent for _, t in staged} | {self.root}:
            _fsync_dir(directory)
        return [t for _, t in staged]

    def apply_retention(self, now: dt.datetime | None = None) -> list[Path]:
        """Delete the date partitions older than the retention; the deleted directories."""
        cutoff = self.cutoff(now)
        if cutoff is None:
            return []
        removed = []
        for directory in sorted(self.root.glob("date=*")):
            day = _partition_date(directory)
            if day is not None and day < cutoff:
                shutil.rmtree(directory)
                removed.append(directory)
        if removed:
            _fsync_dir(self.root)
            log.info("Retention: deleted %d date partition(s) before %s.", len(removed), cutoff)
            if hasattr(self, "_ids"):
                self._ids = self._read_ids()
        return removed

    def close(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
        self._lock.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_archive(
    root: str | Path,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    contract: str | None = None,
    types: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Archived events (every column of :data:`COLUMNS`), sorted by time then id; filters are optional.

    Reads only the files of matching date and contract partitions. An archive without files gives
    an empty frame of the right schema; a directory that is no archive is an :class:`ArchiveError`.
    """
    base = Path(root)
    if not base.is_dir():
        raise ArchiveError(f"{base} is not a directory; give the directory `qstreams archive --to` writes.")
    files = []
    for path in _files(base):
        day = _partition_date(path.parent.parent)
        if since is not None and day is not None and day < to_utc(since).date():
            continue
        if contract is not None and path.parent.name != f"contract={_name(contract)}":
            continue
        files.append(path)
    if not files:
        return pl.DataFrame(schema=COLUMNS)
    try:
        frame = pl.scan_parquet(files, hive_partitioning=False)
        if since is not None:
            frame = frame.filter(pl.col("time") >= to_utc(since))
        if until is not None:
            frame = frame.filter(pl.col("time") < to_utc(until))
        if types:
            frame = frame.filter(pl.col("type").is_in(list(types)))
        return frame.sort("time", "id").collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ArchiveError(f"Cannot read the archive {base}: {exc}.") from exc
