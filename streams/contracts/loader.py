"""Load ODCS v3.x YAML contracts into :class:`~streams.contracts.model.Contract`.

Loading is three steps, each with errors that name ``file:line``:

1. YAML is composed with line marks (safe loader: no tags, no code; depth, aliases and
   size bounded; timestamps read as strings) — :mod:`streams.contracts.source`;
2. the document is validated against the official ODCS JSON Schema of its own
   ``apiVersion``, shipped with the package (never fetched at run time) —
   :mod:`streams.contracts.odcs_schema`;
3. schema objects, properties and quality rules are compiled into the rule IR.
   Anything we cannot run (an unknown metric, a custom engine we do not know, a
   check outside the allow-list, arrays of objects) is refused here with
   ``not supported: ...``, not skipped at run time; what is not enforced but harmless
   (``slaProperties``, representation ``format``s, ``relationships``) becomes a lint note.

``qstreams contracts lint`` adds a dry run of every rule on the engine (:mod:`streams.lint`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streams.contracts.model import (
    SLA,
    Classification,
    Contract,
    Field,
    Op,
    Owner,
    Rule,
    SchemaObject,
    check_label,
)
from streams.contracts.nested import Leaf, flatten
from streams.contracts.odcs_schema import SCHEMA_FILES, Finding, document_findings
from streams.contracts.ownership import ownership_of
from streams.contracts.rules import quality_rule
from streams.contracts.source import Path_, SourceContext, SourceDocument, compose
from streams.contracts.stream import OTHER_KEYS, PREFIX, STREAM_KEYS, parse_stream_spec
from streams.contracts.types import bound_value, check_options, dtype_for, logical_type, odcs_pattern
from streams.errors import ContractError, ContractSchemaError, ContractSyntaxError

__all__ = ["SCHEMA_FILES", "Finding", "lint_contract", "load_contract", "load_contracts", "parse_contract"]

SUPPORTED_API_VERSIONS = ("v3.1.0", "v3.0.2", "v3.0.1", "v3.0.0")
CONTRACT_SUFFIXES = (".yaml", ".yml")


# --- public API -------------------------------------------------------------------


def load_contract(path: str | Path) -> Contract:
    """Load and compile one ODCS contract file; raise :class:`ContractError` (file:line) if unusable."""
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise ContractError(f"cannot read the contract: {exc.strerror}", path=str(p)) from None
    except UnicodeDecodeError:
        raise ContractSyntaxError("the contract is not UTF-8 text", path=str(p), line=1) from None
    return parse_contract(text, path=str(p))


def load_contracts(paths: str | Path | list[str | Path]) -> list[Contract]:
    """Load every contract in the given files and directories (``*.yaml``, ``*.yml``), sorted by path."""
    items = paths if isinstance(paths, list) else [paths]
    return [load_contract(p) for p in _contract_files(items)]


def _contract_files(items: list[str | Path]) -> Iterator[Path]:
    for item in items:
        p = Path(item)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.suffix in CONTRACT_SUFFIXES and f.is_file())
        else:
            yield p


def lint_contract(path: str | Path) -> list[Finding]:
    """Every problem in one contract file (empty when it loads); never raises on bad content."""
    p = str(path)
    try:
        text = Path(path).read_text("utf-8")
        data, lines = compose(text, p)
    except ContractError as exc:
        return [Finding(exc.path or p, exc.line, exc.message)]
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(p, None, f"cannot read the contract: {exc}")]
    findings = document_findings(text, data, lines, p)
    if findings:
        return findings
    ctx = SourceContext(lines, p)
    try:
        _build(data, ctx, allow_empty=True)
    except ContractError as exc:
        return [Finding(exc.path or p, exc.line, exc.message)]
    return [Finding(p, line, message, note=True) for line, message in sorted(ctx.notes, key=lambda n: n[0] or 0)]


def parse_contract(text: str, path: str = "<contract>") -> Contract:
    """Compile contract text (YAML) into a :class:`Contract`."""
    data, lines = compose(text, path)
    findings = document_findings(text, data, lines, path)
    if findings:
        first = findings[0]
        more = f" (and {len(findings) - 1} more problem(s); run `qstreams contracts lint`)" if len(findings) > 1 else ""
        err = ContractSchemaError(first.message + more, path=path, line=first.line)
        err.findings = findings  # type: ignore[attr-defined]
        raise err
    contract = _build(data, SourceContext(lines, path))
    if contract.document is None:
        return contract
    return dataclasses.replace(contract, document=dataclasses.replace(contract.document, text=text))


def canonical_sha256(data: Any) -> str:
    """sha256 over the canonical JSON of a document (sorted keys, no whitespace, dates as ISO)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# --- compile to IR ------------------------------------------------------------------


def _build(data: dict[str, Any], ctx: SourceContext, allow_empty: bool = False) -> Contract:
    """Compile a schema-valid document. ``allow_empty``: a document without schema objects (roles,
    SLA or server examples) is a valid contract to lint, noted, though a worker has nothing to bind."""
    path = ctx.path
    if data.get("kind") != "DataContract":
        raise ctx.error("kind must be DataContract", ("kind",), ContractSchemaError)
    api = data.get("apiVersion")
    if api not in SUPPORTED_API_VERSIONS:
        supported = ", ".join(SUPPORTED_API_VERSIONS)
        raise ctx.error(f"apiVersion {api!r} is not supported; use one of {supported}", ("apiVersion",))
    for key in ("id", "version", "status"):
        if not data.get(key):
            raise ctx.error(f"'{key}' is required for contracts used by quality-streams", (), ContractSchemaError)
    schemas = tuple(_schema_object(obj, ("schema", i), ctx) for i, obj in enumerate(data.get("schema") or []))
    if not schemas and not allow_empty:
        raise ctx.error(
            "the contract has no schema objects, so there is nothing to validate or bind to a topic "
            "(add a `schema:` list; `qstreams contracts lint` accepts it as a document)",
            ("schema",),
            ContractSchemaError,
        )
    if not schemas:
        ctx.note("the contract has no schema objects: it is a valid document, but a worker has nothing to bind", ())
    if data.get("slaProperties"):
        ctx.note(
            "slaProperties are not enforced by the worker (they are carried in the contract for people and "
            "catalogs; latency and freshness are not measured against them)",
            ("slaProperties",),
        )
    topics = [s.topic for s in schemas]
    for t in topics:
        if topics.count(t) > 1:
            raise ctx.error(f"two schema objects are bound to topic {t!r}", ("schema",), ContractSchemaError)
    return Contract(
        id=str(data["id"]),
        version=str(data["version"]),
        status=str(data["status"]),
        sha256=canonical_sha256(data),
        schemas=schemas,
        name=data.get("name"),
        api_version=str(api),
        domain=data.get("domain"),
        owner=_owner(data),
        slas=tuple(
            SLA(property=s.get("property", ""), value=s.get("value"), unit=s.get("unit"), element=s.get("element"))
            for s in data.get("slaProperties") or []
        ),
        path=path,
        ownership=ownership_of(data),
        document=SourceDocument(path, data, ctx.lines),
    )


def _owner(data: dict[str, Any]) -> Owner:
    team = data.get("team")
    team_name: str | None = None
    members: list[dict[str, Any]] = []
    if isinstance(team, dict):
        team_name = team.get("name")
        members = team.get("members") or []
    elif isinstance(team, list):
        members = team
    support = data.get("support") or []
    if isinstance(support, dict):
        support = [support]
    channel: dict[str, Any] = next((s for s in support if s.get("channel")), {})
    owners = ownership_of(data)  # the one definition of an owner: a current member with `role: owner`
    return Owner(
        team=team_name,
        members=tuple(str(m.get("username") or m.get("name")) for m in members if m.get("username") or m.get("name")),
        # who owns the data: the owning team, then its current members with role owner; the
        # contract's access `roles` are grants to read or write, not owners
        roles=(*([owners.team] if owners.team else []), *owners.owners),
        support_channel=channel.get("channel"),
        support_url=channel.get("url"),
    )


def _schema_object(obj: dict[str, Any], where: Path_, ctx: SourceContext) -> SchemaObject:
    name = str(obj["name"])
    topic = str(obj.get("physicalName") or name)
    fields: list[Field] = []
    rules: list[Rule] = []
    leaves = flatten(obj.get("properties") or [], where, ctx)  # nested objects: fields by dotted path
    names = frozenset(leaf.path for leaf in leaves)
    keys = _primary_key([leaf.prop for leaf in leaves], [leaf.path for leaf in leaves])
    built: list[tuple[Leaf, Field, list[Rule]]] = []
    field_map: dict[str, Field] = {}  # by name (a set built per property made loading quadratic)
    for leaf in leaves:
        pw = leaf.where
        field, field_rules = _property(leaf, ctx, names, composite_key=len(keys) > 1)
        if field.name in field_map:
            raise ctx.error(f"property {field.name!r} is declared twice", pw, ContractSchemaError)
        fields.append(field)
        field_map[field.name] = field
        built.append((leaf, field, field_rules))
    for leaf, field, field_rules in built:  # a property's rules may read its siblings: typed by all of them
        rules.extend(field_rules)
        rules.extend(_property_quality(leaf, field, ctx, name, names, field_map))
    if len(keys) > 1:  # a composite primary key: one uniqueness rule over the tuple
        at = leaves[keys[0][1]].where
        args = (tuple(k for k, _ in keys),)
        rules.append(
            Rule(
                name=f"{name}:primaryKey",
                op=Op.UNIQUE,
                args=args,
                check=check_label(Op.UNIQUE, args),
                dimension="uniqueness",
                line=ctx.line(at),
            )
        )
    for at, node in [(where, obj), *((leaf.where, leaf.prop) for leaf in leaves)]:
        if isinstance(node, dict) and node.get("relationships"):
            ctx.note(
                "relationships (foreign keys) are not checked: a stream batch cannot see the referenced data",
                (*at, "relationships"),
            )
    for i, q in enumerate(obj.get("quality") or []):
        rule = quality_rule(
            q, (*where, "quality", i), ctx, column=None, field=None, obj_name=name, fields=field_map, table=name
        )
        if rule is not None:
            rules.append(rule)
    _dedupe_names(rules, ctx, where)
    stream = parse_stream_spec(obj.get("customProperties"), (*where, "customProperties"), ctx,
                               {f.name: f.dtype for f in fields})  # fmt: skip
    for leaf, f, _ in built:  # at the property's own path (a search of the properties per field was quadratic)
        if f.unique:
            ctx.note(
                f"{f.name} is unique on the stream per source partition (within qstreams.uniqueWithin): "
                "global only when messages are keyed by it",
                leaf.where,
            )
    return SchemaObject(
        name=name,
        topic=topic,
        fields=tuple(fields),
        rules=tuple(rules),
        description=obj.get("description"),
        line=ctx.line(where),
        stream=stream,
    )


def _dedupe_names(rules: list[Rule], ctx: SourceContext, where: Path_) -> None:
    seen: dict[str, int] = {}
    for i, r in enumerate(rules):
        if r.name in seen:
            if r.source == "quality" and rules[seen[r.name]].source == "quality":
                raise ctx.error(f"two quality rules are named {r.name!r}; rule names must be unique", where)
            n = 2
            while f"{r.name}#{n}" in seen:
                n += 1
            rules[i] = _replace(r, name=f"{r.name}#{n}")
        seen[rules[i].name] = i


def _replace(rule: Rule, **changes: Any) -> Rule:
    from dataclasses import replace

    return replace(rule, **changes)


def _classification(value: Any) -> Classification | None:
    if value is None:
        return None
    v = str(value).strip().lower()
    aliases = {"personal": "pii", "sensitive": "confidential", "secret": "restricted", "private": "confidential"}
    v = aliases.get(v, v)
    try:
        return Classification(v)
    except ValueError:
        # unknown classification labels are treated as sensitive: redacting too much is the safe side
        return Classification.CONFIDENTIAL


def _inherited_classification(leaf: Leaf) -> Classification | None:
    """A field's own classification, unless an enclosing object's is redacted and its own is not."""
    labels = [_classification(v) for v in (*leaf.inherited, leaf.prop.get("classification")) if v is not None]
    return next((c for c in labels if c is not None and c.redacted), labels[-1] if labels else None)


def _primary_key(props: list[Any], names: list[str]) -> list[tuple[str, int]]:
    """``(name, index)`` of the primary-key properties (named by ``names``, their paths), ordered by
    ``primaryKeyPosition`` (then declaration order: a missing or -1 position sorts after the positioned ones)."""
    keys = [(p, i) for i, p in enumerate(props) if isinstance(p, dict) and p.get("primaryKey")]

    def position(item: tuple[dict[str, Any], int]) -> tuple[int, int]:
        pos = item[0].get("primaryKeyPosition")
        return (pos if isinstance(pos, int) and not isinstance(pos, bool) and pos > 0 else 1 << 30, item[1])

    return [(names[i], i) for _, i in sorted(keys, key=position)]


#: ``qstreams.*`` custom properties read on a property (the stream-time ones are schema-level)
_PROPERTY_KEYS = ("qstreams.drift",)


def _property_custom_keys(custom: Any, where: Path_, ctx: SourceContext) -> None:
    """Refuse a ``qstreams.*`` custom property nobody reads on a property: a typo, or a schema-level setting
    (``qstreams.uniqueWithin``, ``qstreams.window``, …) written next to the field, which would be ignored."""
    entries = (
        [(k, (*where, k)) for k in custom] if isinstance(custom, dict)
        else [(c.get("property"), (*where, i)) for i, c in enumerate(custom) if isinstance(c, dict)]
        if isinstance(custom, list) else []
    )  # fmt: skip
    for key, at in entries:
        if not isinstance(key, str) or not key.startswith(PREFIX) or key in _PROPERTY_KEYS:
            continue
        if key in STREAM_KEYS or key in OTHER_KEYS:
            raise ctx.error(
                f"custom property {key!r} is a setting of the schema object, not of a property, and would be "
                "ignored here: move it to the schema object's customProperties",
                at,
                ContractSchemaError,
            )
        raise ctx.error(
            f"unknown custom property {key!r} on a property; the only qstreams.* key read on a property is "
            f"{', '.join(_PROPERTY_KEYS)} (schema objects take {', '.join((*STREAM_KEYS, *OTHER_KEYS))})",
            at,
            ContractSchemaError,
        )


def _property(
    leaf: Leaf,
    ctx: SourceContext,
    names: frozenset[str],
    composite_key: bool = False,
) -> tuple[Field, list[Rule]]:
    prop, where, name = leaf.prop, leaf.where, leaf.path
    _property_custom_keys(prop.get("customProperties"), (*where, "customProperties"), ctx)
    dtype = dtype_for(prop, where, ctx)
    logical = logical_type(prop) or ""
    check_options(prop, logical, where, ctx)
    pk = bool(prop.get("primaryKey"))
    required = (bool(prop.get("required")) or pk) and leaf.ancestors_required
    unique = bool(prop.get("unique")) or (pk and not composite_key)  # a composite key is unique as a tuple
    line = ctx.line(where)
    field = Field(
        name=name,
        logical_type=logical,
        dtype=dtype,
        required=required,
        unique=unique,
        primary_key=pk,
        classification=_inherited_classification(leaf),
        description=prop.get("description"),
        line=line,
    )

    def schema_rule(suffix: str, op: Op, args: tuple[Any, ...], at: Path_, source: str = "schema") -> Rule:
        return Rule(
            name=f"{name}:{suffix}",
            op=op,
            args=args,
            check=check_label(op, args, dtype),
            column=name,
            dimension="conformity" if op not in (Op.NOT_NULL, Op.UNIQUE) else None,
            source=source,
            line=ctx.line(at),
        )

    rules = [schema_rule("dtype", Op.DTYPE, (), (*where, "logicalType"))]
    if required:
        rules.append(_replace(schema_rule("required", Op.NOT_NULL, (), where), dimension="completeness"))
    if unique:
        rules.append(_replace(schema_rule("unique", Op.UNIQUE, (), where), dimension="uniqueness"))
    opts = prop.get("logicalTypeOptions") or {}
    ow = (*where, "logicalTypeOptions")
    bounds = (("minimum", Op.GE), ("exclusiveMinimum", Op.GT), ("maximum", Op.LE), ("exclusiveMaximum", Op.LT))
    for key, op in bounds:
        if key not in opts or isinstance(opts[key], bool):
            continue
        value = bound_value(opts[key], dtype, (*ow, key), ctx)
        # ODCS v3.0.x: `exclusiveMinimum: true` makes `minimum` strict (JSON Schema draft 4 style)
        strict = {"minimum": "exclusiveMinimum", "maximum": "exclusiveMaximum"}.get(key)
        if strict is not None and opts.get(strict) is True:
            key, op = strict, (Op.GT if op is Op.GE else Op.LT)
        rules.append(schema_rule(key, op, (value,), (*ow, key), "logicalTypeOptions"))
    if "multipleOf" in opts:
        rules.append(
            schema_rule("multipleOf", Op.MULTIPLE_OF, (opts["multipleOf"],), (*ow, "multipleOf"), "logicalTypeOptions")
        )
    if "pattern" in opts:
        pattern = str(opts["pattern"])  # ECMA-262 (JSON Schema's): runs as its Rust equivalent, labelled as written
        matches = schema_rule(
            "pattern", Op.STR_CONTAINS, (odcs_pattern(pattern, (*ow, "pattern"), ctx),), (*ow, "pattern")
        )
        rules.append(_replace(matches, source="logicalTypeOptions", check=check_label(Op.STR_CONTAINS, (pattern,))))
    if "minLength" in opts or "maxLength" in opts:
        args = (opts.get("minLength"), opts.get("maxLength"))
        at = (*ow, "minLength" if "minLength" in opts else "maxLength")
        rules.append(schema_rule("length", Op.STR_LENGTH, args, at, "logicalTypeOptions"))
    return field, rules


def _property_quality(
    leaf: Leaf, field: Field, ctx: SourceContext, table: str, names: frozenset[str], fields: dict[str, Field]
) -> list[Rule]:
    """A property's ``quality`` rules, typed by every property of its object (``fields``), as the object's
    own rules are: a rule on one property may read its siblings (their narrow integers widen, text
    compared with their dates is read as a date, SQL reads them as BIGINT)."""
    rules = []
    for i, q in enumerate(leaf.prop.get("quality") or []):
        rule = quality_rule(
            q,
            (*leaf.where, "quality", i),
            ctx,
            column=field.name,
            field=field,
            obj_name=None,
            fields=fields,
            table=table,
            columns=names,
        )
        if rule is not None:
            rules.append(rule)
    return rules
