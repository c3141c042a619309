"""Reference profiles: built from Parquet / NDJSON / CSV in bounded memory, stored as versioned files.

:func:`build_reference` reads the data twice, in batches of ``batch_rows`` through polars lazy
scans (only the profiled columns are read, so a reference larger than memory works):

1. moments and a DataSketches KLL quantile sketch per numeric field (bounded memory), from which
   the bin edges are chosen: the KLL quantiles at ``i / bins`` (deduplicated), with the exact
   minimum and maximum as the outer edges;
2. the profile on those edges: exact histogram counts, category counts, per-model scores.

Numeric reference data holding +/-inf is refused after pass 1 (``ProfileError``, reason ``infinite``, naming the
field, the count and the first row).
   Categorical fields with more distinct values than the cap in pass 1 (identifiers) are kept
   with ``cap=0``: null and distinct counts only, which is all drift looks at for them.

The file (``.qsref`` by convention) carries the contract ``id@version`` and its sha256, the schema
object, the spec (every edge) and the profile; its own sha256 is :attr:`Reference.sha256`, which
every drift result carries.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from streams.errors import DataFormatError, ProfileError
from streams.profiles.codec import check_identity, decode_document, encode_document
from streams.profiles.fields import NumericProfile
from streams.profiles.integrity import check_profile
from streams.profiles.profile import Profile, empty_profile, profile_frame
from streams.profiles.properties import prediction_spec
from streams.profiles.spec import Kind, ProfileSpec, refine_tails, spec_for_schema

if TYPE_CHECKING:
    from streams.contracts.model import Contract

__all__ = ["DEFAULT_BINS", "Reference", "build_reference", "load_reference", "save_reference", "scan_batches"]

#: Quantile bins per numeric field (100: KS and Wasserstein from bins are within 1% of the reference mass).
DEFAULT_BINS = 100
#: KLL accuracy parameter: ~1.65% normalized rank error (99% confidence) at k=200; 400 halves it.
KLL_K = 400

Progress = Callable[[int, int], None]  # (pass number 1 or 2, rows read so far in this pass)


@dataclass(frozen=True)
class Reference:
    """A reference profile with the identity of what it was built from."""

    contract: str  # id@version
    contract_sha256: str
    schema: str
    spec: ProfileSpec
    profile: Profile
    created: str
    sources: tuple[str, ...]
    sha256: str = ""  # of the serialized file; filled by save_reference / load_reference

    def body(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "contract_sha256": self.contract_sha256,
            "schema": self.schema,
            "created": self.created,
            "sources": list(self.sources),
            "spec": self.spec.as_dict(),
            "profile": self.profile.as_dict(),
        }

    def encode(self) -> bytes:
        return encode_document("reference", self.body())


def save_reference(reference: Reference, path: str | Path) -> Reference:
    """Write the file; returns the reference with its :attr:`~Reference.sha256` filled in."""
    blob = reference.encode()
    Path(path).write_bytes(blob)
    return _with_sha(reference, blob)


def _with_sha(reference: Reference, blob: bytes) -> Reference:
    return replace(reference, sha256=hashlib.sha256(blob).hexdigest())


def load_reference(path: str | Path, *, contract: Contract | None = None, schema: str | None = None) -> Reference:
    """Read a reference file; with ``contract`` (and ``schema``), refuse one built for anything else."""
    where = str(path)
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise ProfileError(
            f"Cannot read the reference profile ({exc.strerror}); build it with `qstreams profile build`.",
            reason="corrupt",
            path=where,
        ) from None
    body = decode_document(blob, "reference", path=where)
    try:
        spec = ProfileSpec.from_dict(body["spec"])
        reference = Reference(
            str(body["contract"]), str(body["contract_sha256"]), str(body["schema"]), spec,
            Profile.from_dict(body["profile"]), str(body["created"]), tuple(str(s) for s in body["sources"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(
            f"The reference profile is corrupt: a required entry is missing or malformed ({exc!r}).",
            reason="corrupt",
            path=where,
        ) from None
    if reference.profile.spec_id != spec.binning_id:
        raise ProfileError(
            "The reference profile is corrupt: its profile was not computed with its own bins.",
            reason="corrupt",
            path=where,
        )
    check_profile(reference.profile, spec, path=where)
    want_schema = schema if schema is not None else (contract.schema().name if contract is not None else None)
    check_identity(
        reference.contract, reference.schema, spec.binning_id, contract.ref if contract else None, want_schema,
        None, path=where, kind="reference profile",
    )  # fmt: skip
    return _with_sha(reference, blob)


# --- reading data in batches -------------------------------------------------------------------------------


def scan_batches(path: Path, schema: pl.Schema, batch_rows: int) -> Iterator[pl.DataFrame]:
    """Batches of the ``schema`` columns of one file, cast to the contract's types (bad values become null)."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise DataFormatError(f"no such data file: {path}")
    wanted = dict(schema)
    try:
        if suffix in (".parquet", ".pq"):
            lf = pl.scan_parquet(path)
        elif suffix in (".ndjson", ".jsonl", ".json"):
            lf = pl.scan_ndjson(path, schema={c: _wide(t) for c, t in wanted.items()}, ignore_errors=True)
        elif suffix in (".csv", ".tsv"):
            sep = "\t" if suffix == ".tsv" else ","
            lf = pl.scan_csv(path, separator=sep, schema_overrides=wanted, ignore_errors=True)
        else:
            raise DataFormatError(f"cannot tell the format of {path} from its extension; use Parquet, NDJSON or CSV")
        present = lf.collect_schema().names()
        columns = [
            pl.col(c).cast(t, strict=False) if c in present else pl.lit(None, dtype=t).alias(c)
            for c, t in wanted.items()
        ]
        yield from lf.select(columns).collect_batches(chunk_size=batch_rows)
    except DataFormatError:
        raise
    except Exception as exc:  # polars raises many kinds; all mean "this file is not readable as a table"
        raise DataFormatError(f"cannot read {path} as a table: {exc}") from None


def _wide(dtype: pl.DataType) -> pl.DataType:
    """The NDJSON reader's type for a contract type (its reader rejects narrow integers; cast afterwards)."""
    if dtype.is_integer():
        return pl.Int64()
    if dtype.is_float():
        return pl.Float64()
    return dtype


def _choose_edges(sketch: Any, lo: float, hi: float, bins: int) -> tuple[float, ...]:
    qs = [i / bins for i in range(1, bins)]
    inner = [float(q) for q in sketch.get_quantiles(qs)] if not sketch.is_empty() else []
    return refine_tails(tuple(sorted({lo, hi, *(q for q in inner if lo < q < hi)})))


def _refuse_infinite(infinite: dict[str, list[Any]], rows: int) -> None:
    """:class:`ProfileError` naming the numeric fields whose reference data holds +/-inf (:func:`build_reference`)."""
    name, (count, path, row) = next(iter(infinite.items()))
    others = f" (and {', '.join(list(infinite)[1:])})" if len(infinite) > 1 else ""
    raise ProfileError(
        f"The reference data holds {count:,} infinite value(s) of {rows:,} rows in field {name!r}{others}, the first "
        f"in {path} at data row {row:,}: a reference needs finite numbers (its bin edges are quantiles, its spread "
        "normalises the Wasserstein distance, and either would be infinite, so every window would drift). Build it "
        "from data without them, or bound the field in the contract (minimum / maximum) so that such rows fail "
        "validation and stay out of the data the reference is built from.",
        reason="infinite",
    )


def _refuse_overflow(profile: Profile) -> None:
    """:class:`ProfileError` (``infinite``) for a numeric field of finite values whose mean or spread overflows
    float64 (values beyond ~1e154 apart): its file would hold no number there and be refused at load as corrupt,
    and its infinite sd would make every window's normalised Wasserstein distance 0."""
    for name, p in profile.fields.items():
        if isinstance(p, NumericProfile) and p.count and not (math.isfinite(p.mean) and math.isfinite(p.m2)):
            raise ProfileError(
                f"The reference data of field {name!r} holds values from {p.min:g} to {p.max:g}: their mean or "
                "spread overflows 64-bit floats, so the reference would have no finite standard deviation (every "
                "window's normalised Wasserstein distance would read 0) and its file could not be read back. Build "
                "it from data without them, or bound the field in the contract (minimum / maximum).",
                reason="infinite",
            )


def build_reference(
    contract: Contract,
    schema: str | None,
    paths: Sequence[str | Path],
    *,
    bins: int = DEFAULT_BINS,
    batch_rows: int = 100_000,
    progress: Progress | None = None,
) -> Reference:
    """Profile ``paths`` as the reference of ``contract`` / ``schema`` (two streamed passes, see module doc)."""
    import datasketches

    obj = contract.schema(schema)
    base = spec_for_schema(contract, obj, prediction=prediction_spec(contract, obj.name))
    needed = {f.name for f in base.fields}
    if base.prediction is not None:
        p = base.prediction
        needed |= {n for n in (p.score, p.label, p.model_version) if n is not None}
    columns = pl.Schema({f.name: f.dtype for f in obj.fields if f.name in needed})
    files = [Path(p) for p in paths]
    if not files:
        raise DataFormatError("build_reference needs at least one data file")

    numeric = [f.name for f in base.fields if f.kind is Kind.NUMERIC]
    sketches = {name: datasketches.kll_doubles_sketch(KLL_K) for name in numeric}
    infinite: dict[str, list[Any]] = {}  # field -> [count, first file, its first row]
    first = empty_profile(base)
    rows = 0
    for path in files:
        read = 0
        for batch in scan_batches(path, columns, batch_rows):
            first = first.merge(profile_frame(batch, base))
            for name in numeric:
                values = batch.get_column(name).cast(pl.Float64, strict=False).fill_nan(None)
                if (inf := values.is_infinite()).any():
                    seen = infinite.setdefault(name, [0, path, read + int(inf.arg_true()[0]) + 1])
                    seen[0] += int(inf.sum())
                values = values.drop_nulls()
                if len(values):
                    sketches[name].update(values.to_numpy(writable=True))
            rows, read = rows + batch.height, read + batch.height
            if progress is not None:
                progress(1, rows)
    if infinite:
        _refuse_infinite(infinite, rows)
    _refuse_overflow(first)
    edges: dict[str, tuple[float, ...]] = {}
    for name in numeric:
        moments = first.numeric(name)
        if moments.count and moments.min is not None and moments.max is not None:
            edges[name] = _choose_edges(sketches[name], moments.min, moments.max, bins)
    # identifier-like fields (more distinct values than the cap): only nulls and distinct count from now on
    identifiers = {f.name for f in base.fields if f.kind is Kind.CATEGORICAL and first.categorical(f.name).truncated}
    spec = base.with_edges(edges)
    spec = replace(spec, fields=tuple(replace(f, cap=0) if f.name in identifiers else f for f in spec.fields))

    profile = empty_profile(spec)
    rows = 0
    for path in files:
        for batch in scan_batches(path, columns, batch_rows):
            profile = profile.merge(profile_frame(batch, spec))
            rows += batch.height
            if progress is not None:
                progress(2, rows)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Reference(contract.ref, contract.sha256, obj.name, spec, profile, created, tuple(str(p) for p in files))
