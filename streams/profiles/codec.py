"""The versioned serialized form of profiles: for the internal Kafka topic and for reference files.

Layout: the 4-byte magic ``QSP`` + format version byte, then zlib-compressed JSON (orjson)::

    b"QSP" | u8 FORMAT_VERSION | zlib(json({"type": "profile" | "reference", ...}))

Anything else — a truncated or corrupt blob, another format version, a profile of another
contract, schema object or bin layout — raises :class:`~streams.errors.ProfileError` with a
``reason`` (``corrupt``, ``format_version``, ``contract``, ``schema``, ``binning``).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import orjson

from streams.errors import ProfileError
from streams.profiles.profile import Profile

__all__ = ["FORMAT_VERSION", "MAGIC", "decode_document", "decode_profile", "encode_document", "encode_profile"]

MAGIC = b"QSP"
FORMAT_VERSION = 1


def encode_document(kind: str, body: Mapping[str, Any]) -> bytes:
    payload = orjson.dumps({"type": kind, **body})
    return MAGIC + bytes([FORMAT_VERSION]) + zlib.compress(payload, 6)


def decode_document(data: bytes, kind: str, *, path: str | None = None) -> dict[str, Any]:
    """The JSON body of a serialized ``kind`` document, or a :class:`ProfileError` saying why not."""
    if len(data) < 5 or data[:3] != MAGIC:
        raise ProfileError(
            f"This is not a quality-streams {kind}: it does not start with the {MAGIC!r} magic bytes "
            "(a wrong file, or one cut short).",
            reason="corrupt",
            path=path,
        )
    if data[3] != FORMAT_VERSION:
        raise ProfileError(
            f"This {kind} has format version {data[3]}, but this release reads version {FORMAT_VERSION}; "
            "rebuild it with `qstreams profile build` of this release.",
            reason="format_version",
            path=path,
        )
    try:
        body = orjson.loads(zlib.decompress(data[4:]))
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise ProfileError(
            f"This {kind} is corrupt and cannot be decompressed or parsed ({exc}); rebuild it.",
            reason="corrupt",
            path=path,
        ) from exc
    if not isinstance(body, dict) or body.get("type") != kind:
        found = body.get("type") if isinstance(body, dict) else type(body).__name__
        raise ProfileError(f"Expected a {kind} but found a {found!r} document.", reason="corrupt", path=path)
    return body


def encode_profile(profile: Profile) -> bytes:
    return encode_document("profile", profile.as_dict())


def decode_profile(
    data: bytes,
    *,
    contract: str | None = None,
    schema: str | None = None,
    spec_id: str | None = None,
    path: str | None = None,
) -> Profile:
    """Decode a profile; when ``contract`` / ``schema`` / ``spec_id`` are given, they must match."""
    body = decode_document(data, "profile", path=path)
    try:
        profile = Profile.from_dict(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(
            f"This profile is corrupt: a required entry is missing or malformed ({exc!r}).",
            reason="corrupt",
            path=path,
        ) from exc
    check_identity(profile.contract, profile.schema, profile.spec_id, contract, schema, spec_id, path=path)
    return profile


def check_identity(
    found_contract: str,
    found_schema: str,
    found_spec: str,
    contract: str | None,
    schema: str | None,
    spec_id: str | None,
    *,
    path: str | None = None,
    kind: str = "profile",
) -> None:
    if contract is not None and found_contract != contract:
        fid, _, _fver = found_contract.rpartition("@")
        wid, _, _ = contract.rpartition("@")
        what = "another version of this contract" if fid == wid else "another contract"
        raise ProfileError(
            f"This {kind} was built for {found_contract} ({what}), not {contract}; "
            f"rebuild it for {contract} with `qstreams profile build`.",
            reason="contract",
            path=path,
        )
    if schema is not None and found_schema != schema:
        raise ProfileError(
            f"This {kind} profiles schema object {found_schema!r}, not {schema!r}.", reason="schema", path=path
        )
    if spec_id is not None and found_spec != spec_id:
        raise ProfileError(
            f"This {kind} uses bins {found_spec}, not {spec_id}: it was computed against another reference.",
            reason="binning",
            path=path,
        )
