"""The ODCS JSON Schema check: each ``apiVersion`` against its own schema, findings as ``file:line``.

Findings are made for people: an ``unevaluatedProperties`` failure that only echoes a
failure inside a branch (a bad ``metric`` value, an empty ``description:``) is not
reported as "unknown field" for the correct keys beside it; a key that is truly unknown
anywhere in the schema at that place is reported with a "did you mean" suggestion, in
preference to the consequences it causes (``mustBeLessThen`` is not "needs exactly one
threshold operator").
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema

from streams.contracts.model import THRESHOLD_OPERATORS
from streams.contracts.source import Path_, line_of

__all__ = ["SCHEMA_FILES", "Finding", "document_findings", "schema_findings"]

_UNKNOWN_KEYS = ("additionalProperties", "unevaluatedProperties")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a contract file, printed as ``path:line: message``.

    ``note`` findings are informational (something the worker does not enforce): lint prints
    them but they do not make a contract invalid.
    """

    path: str
    line: int | None
    message: str
    note: bool = False

    def __str__(self) -> str:
        return f"{self.path}:{self.line or 1}: {'note: ' if self.note else ''}{self.message}"


#: The JSON Schema each apiVersion is checked against: v3.1.0 from the ``open-data-contract-standard``
#: package, the v3.0.x ones vendored in ``streams/contracts/schemas/`` (see the README there).
SCHEMA_FILES: dict[str, tuple[str, str]] = {
    "v3.1.0": ("open_data_contract_standard", "schema.json"),
    "v3.0.2": ("streams.contracts", "schemas/odcs-json-schema-v3.0.2.json"),
    "v3.0.1": ("streams.contracts", "schemas/odcs-json-schema-v3.0.2.json"),
    "v3.0.0": ("streams.contracts", "schemas/odcs-json-schema-v3.0.0.json"),
}


@functools.cache
def _validator(api_version: str = "v3.1.0") -> jsonschema.protocols.Validator:
    package, name = SCHEMA_FILES.get(api_version, SCHEMA_FILES["v3.1.0"])
    text = resources.files(package).joinpath(name).read_text("utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)  # type: ignore[no-any-return]


def schema_findings(data: Any, lines: dict[Path_, int], path: str) -> list[Finding]:
    """Findings against the JSON Schema of the contract's own apiVersion.

    A v3.0.x document is also accepted when it is valid against the v3.1.0 schema, which lists
    the v3.0.x versions in its ``apiVersion`` enum: the standard's own examples declare v3.0.2
    while using v3.1 constructs (``logicalType: timestamp``, ``quality`` without ``rule``, a
    ``team`` object). When both fail, the schema with fewer findings is reported.
    """
    api = data.get("apiVersion") if isinstance(data, dict) else None
    own = api if isinstance(api, str) and api in SCHEMA_FILES else "v3.1.0"
    findings = _findings_against(own, data, lines, path)
    if findings and own != "v3.1.0":
        newer = _findings_against("v3.1.0", data, lines, path)
        if len(newer) < len(findings):
            return newer
    return findings


#: The findings of the last few documents checked, by (sha256 of the text, path): ``qstreams contracts lint``
#: checks a file, then loads it, and the check is most of a large contract's load: it is done once.
_CHECKED: dict[tuple[str, str], tuple[Finding, ...]] = {}
_CHECKED_KEPT = 16
_CHECKED_LOCK = threading.Lock()


def document_findings(text: str, data: Any, lines: dict[Path_, int], path: str) -> list[Finding]:
    """:func:`schema_findings` of the document whose source is ``text`` (composed to ``data`` and ``lines``)
    at ``path``; a text checked at that path a moment ago is not checked again (its findings are kept)."""
    key = (hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), path)
    with _CHECKED_LOCK:
        found = _CHECKED.get(key)
    if found is None:
        found = tuple(schema_findings(data, lines, path))
        with _CHECKED_LOCK:
            while len(_CHECKED) >= _CHECKED_KEPT:
                del _CHECKED[next(iter(_CHECKED))]
            _CHECKED[key] = found
    return list(found)


def _findings_against(api_version: str, data: Any, lines: dict[Path_, int], path: str) -> list[Finding]:
    validator = _validator(api_version)
    by_place: dict[Path_, list[jsonschema.ValidationError]] = {}
    for err in _errors(api_version, data):
        by_place.setdefault(tuple(err.absolute_path), []).append(err)
    root = validator.schema
    causes_at = [w for w, errs in by_place.items() if any(e.validator not in _UNKNOWN_KEYS for e in errs)]
    out: list[Finding] = []
    for where in sorted(by_place, key=lambda w: [f"{p:08d}" if isinstance(p, int) else p for p in w]):
        errs = by_place[where]
        field = ".".join(str(p) for p in where) or "(document)"
        unknown: list[str] = []
        known: set[str] = set()
        for e in errs:
            if e.validator in _UNKNOWN_KEYS and isinstance(e.instance, dict):
                here = _known_keys(e.schema, root)
                known |= here
                listed = re.findall(r"'([^']+)'", e.message.split("(")[-1])
                unknown += [k for k in listed if k in e.instance and k not in here and k not in unknown]
        if unknown:
            out.append(Finding(path, line_of(lines, (*where, unknown[0])), _unknown(unknown, known, field)))
            continue
        causes = [e for e in errs if e.validator not in _UNKNOWN_KEYS]
        if not causes:
            # keys known to the schema but not evaluated: an echo of a failure inside this object
            # (reported there), or keys that only another variant of this object allows
            if any(c[: len(where)] == where for c in causes_at):
                continue
            extra = [k for e in errs for k in re.findall(r"'([^']+)'", e.message.split("(")[-1]) if k in e.instance]
            if extra:
                out.append(
                    Finding(
                        path,
                        line_of(lines, (*where, extra[0])),
                        f"field {', '.join(repr(k) for k in dict.fromkeys(extra))} is not allowed in {field} as "
                        "written (another variant of this object allows it; check its `type`)",
                    )
                )
            continue
        best = jsonschema.exceptions.best_match(causes)
        out.append(Finding(path, line_of(lines, tuple(best.absolute_path)), _describe(best, tuple(best.absolute_path))))
    return out


def _errors(api_version: str, data: Any) -> Iterator[jsonschema.ValidationError]:
    """Every schema error in ``data``, nested properties checked one at a time.

    The ODCS schema nests ``if``/``then`` branches under ``unevaluatedProperties``, and jsonschema evaluates a
    property's children again for every branch that looks at it: checked as one document, each level of nested
    objects (or array ``items``) tripled the work, so a contract nested eight deep took minutes. Each nested
    property is cut out where the schema would descend into it (an object's ``properties``, an array's
    ``items``), left as an empty list / object in its parent, and checked on its own against the definition the
    parent would have used; its errors keep their place in the document."""
    parts: list[tuple[Path_, Any, str]] = []
    yield from _validator(api_version).iter_errors(_cut_document(data, parts))
    while parts:
        where, node, definition = parts.pop()
        for err in _definition_validator(api_version, definition).iter_errors(node):
            err.path.extendleft(reversed(where))
            yield err


def _cut_document(data: Any, parts: list[tuple[Path_, Any, str]]) -> Any:
    schemas = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schemas, list):
        return data
    cut_schemas: list[Any] = []
    for i, obj in enumerate(schemas):
        props = obj.get("properties") if isinstance(obj, dict) else None
        if isinstance(props, list):
            at: Path_ = ("schema", i, "properties")
            obj = {**obj, "properties": [_cut(p, (*at, j), parts, item=False) for j, p in enumerate(props)]}
        cut_schemas.append(obj)
    return {**data, "schema": cut_schemas}


def _cut(prop: Any, where: Path_, parts: list[tuple[Path_, Any, str]], *, item: bool) -> Any:
    """``prop`` without the children the schema descends into (each put in ``parts``, itself cut)."""
    if not isinstance(prop, dict):
        return prop
    out = dict(prop)
    kids = prop.get("properties")
    if isinstance(kids, list) and (item or prop.get("logicalType") == "object"):
        out["properties"] = []
        for j, kid in enumerate(kids):
            at = (*where, "properties", j)
            parts.append((at, _cut(kid, at, parts, item=False), "SchemaProperty"))
    element = prop.get("items")
    if isinstance(element, dict) and prop.get("logicalType") == "array":
        out["items"] = {}
        at = (*where, "items")
        parts.append((at, _cut(element, at, parts, item=True), "SchemaItemProperty"))
    return out


@functools.cache
def _definition_validator(api_version: str, definition: str) -> jsonschema.protocols.Validator:
    """A validator of one ``$defs`` entry of the schema of ``api_version`` (references resolved in it)."""
    root = _validator(api_version).schema
    schema = {"$schema": root.get("$schema"), "$defs": root.get("$defs", {}), "$ref": f"#/$defs/{definition}"}
    return type(_validator(api_version))(schema)  # type: ignore[no-any-return]


def _known_keys(schema: Any, root: Any, seen: frozenset[str] = frozenset()) -> set[str]:
    """Every property name a schema (with its $refs and allOf/anyOf/oneOf/if/then/else) declares."""
    if not isinstance(schema, dict):
        return set()
    keys = set(schema.get("properties") or {})
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/") and ref not in seen:
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        keys |= _known_keys(target, root, seen | {ref})
    for combinator in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(combinator) or []:
            keys |= _known_keys(sub, root, seen)
    for branch in ("if", "then", "else"):
        keys |= _known_keys(schema.get(branch), root, seen)
    return keys


def _unknown(unknown: list[str], known: set[str], field: str) -> str:
    names = ", ".join(repr(k) for k in unknown)
    guesses = [g for k in unknown for g in difflib.get_close_matches(k, sorted(known), n=1, cutoff=0.75)]
    hint = f" (did you mean {', '.join(repr(g) for g in guesses)}?)" if guesses else ""
    allowed = f"; allowed here: {', '.join(sorted(known))}" if known else ""
    return f"unknown field {names} in {field}{hint}{allowed}"


def _describe(err: jsonschema.ValidationError, where: Path_) -> str:
    field = ".".join(str(p) for p in where) or "(document)"
    if err.validator == "required":
        return f"{field}: {err.message}"
    if err.validator == "oneOf" and "mustBe" in str(err.schema):
        ops = ", ".join(THRESHOLD_OPERATORS)
        return f"{field}: a rule needs exactly one threshold operator ({ops})"
    if err.validator == "enum":
        options = [str(v) for v in err.validator_value]
        guess = difflib.get_close_matches(str(err.instance), options, n=1, cutoff=0.75)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        return f"{field}: {err.instance!r} is not one of {', '.join(options)}{hint}"
    if err.validator == "type" and err.instance is None:
        return f"{field} is empty (a key with no value); give it a value or remove the key"
    return f"{field}: {err.message}"
