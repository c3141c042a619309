"""Load ODCS v3.1 YAML contracts into :class:`~streams.contracts.model.Contract`.

Loading is three steps, each with errors that name ``file:line``:

1. YAML is composed with line marks (safe loader: no tags, no code);
2. the document is validated against the official ODCS JSON Schema shipped by the
   ``open-data-contract-standard`` package (never fetched at run time);
3. schema objects, properties and quality rules are compiled into the rule IR.
   Anything we cannot run (an unknown metric, a custom engine we do not know, a
   check outside the allow-list) is refused here, not skipped at run time.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import polars as pl
import yaml

from streams.contracts import expressions
from streams.contracts.model import (
    SLA,
    THRESHOLD_OPERATORS,
    Classification,
    Contract,
    Field,
    Op,
    Owner,
    Rule,
    SchemaObject,
    Severity,
    Threshold,
    Unit,
    check_label,
)
from streams.errors import ContractError, ContractSchemaError, ContractSyntaxError, UnsupportedRuleError

__all__ = ["Finding", "lint_contract", "load_contract", "load_contracts", "parse_contract"]

SUPPORTED_API_VERSIONS = ("v3.1.0", "v3.0.2", "v3.0.1", "v3.0.0")
CONTRACT_SUFFIXES = (".yaml", ".yml")
Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a contract file, printed as ``path:line: message``."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line or 1}: {self.message}"


# --- YAML with line numbers ---------------------------------------------------------


def _compose(text: str, path: str) -> tuple[Any, dict[Path_, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContractSyntaxError(f"malformed YAML: {problem}", path=path, line=line) from None
    if node is None:
        raise ContractSyntaxError("the file is empty; expected an ODCS contract document", path=path, line=1)
    lines: dict[Path_, int] = {}
    _index(node, (), lines)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # e.g. a bad tag only the constructor sees
        raise ContractSyntaxError(f"malformed YAML: {exc}", path=path) from None
    return data, lines


def _index(node: yaml.Node, where: Path_, lines: dict[Path_, int]) -> None:
    lines[where] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            lines[(*where, k)] = key.start_mark.line + 1
            _index(value, (*where, k), lines)
            lines[(*where, k)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*where, i), lines)


def _line(lines: dict[Path_, int], where: Path_) -> int | None:
    for n in range(len(where), -1, -1):
        if where[:n] in lines:
            return lines[where[:n]]
    return None


# --- JSON Schema ------------------------------------------------------------------


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text("utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)  # type: ignore[no-any-return]


def _schema_findings(data: Any, lines: dict[Path_, int], path: str) -> list[Finding]:
    by_place: dict[Path_, list[jsonschema.ValidationError]] = {}
    for err in _validator().iter_errors(data):
        by_place.setdefault(tuple(err.absolute_path), []).append(err)
    out: list[Finding] = []
    for where in sorted(by_place, key=lambda w: [str(p) for p in w]):
        errs = by_place[where]
        # "unevaluatedProperties" only echoes another failure at the same place: report the cause
        causes = [e for e in errs if e.validator != "unevaluatedProperties"] or errs
        best = jsonschema.exceptions.best_match(causes)
        at = tuple(best.absolute_path)
        if best.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(best.instance, dict):
            quoted = re.findall(r"'([^']+)'", best.message.split("(")[-1])
            extra = [k for k in quoted if k in best.instance]
            if extra:
                at = (*at, extra[0])
        out.append(Finding(path, _line(lines, at), _describe(best, tuple(best.absolute_path))))
    return out


def _describe(err: jsonschema.ValidationError, where: Path_) -> str:
    field = ".".join(str(p) for p in where) or "(document)"
    if err.validator in ("additionalProperties", "unevaluatedProperties"):
        extra = re.findall(r"'([^']+)'", err.message.split("(")[-1]) or [err.message]
        allowed = sorted(err.schema.get("properties", {}))
        hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return f"unknown field {', '.join(repr(e) for e in extra)} in {field}{hint}"
    if err.validator == "required":
        return f"{field}: {err.message}"
    if err.validator == "oneOf" and "mustBe" in str(err.schema):
        ops = ", ".join(THRESHOLD_OPERATORS)
        return f"{field}: a rule needs exactly one threshold operator ({ops})"
    if err.validator == "enum":
        return f"{field}: {err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
    return f"{field}: {err.message}"


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
        data, lines = _compose(text, p)
    except ContractError as exc:
        return [Finding(exc.path or p, exc.line, exc.message)]
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(p, None, f"cannot read the contract: {exc}")]
    findings = _schema_findings(data, lines, p)
    if findings:
        return findings
    try:
        _build(data, lines, p)
    except ContractError as exc:
        return [Finding(exc.path or p, exc.line, exc.message)]
    return []


def parse_contract(text: str, path: str = "<contract>") -> Contract:
    """Compile contract text (YAML) into a :class:`Contract`."""
    data, lines = _compose(text, path)
    findings = _schema_findings(data, lines, path)
    if findings:
        first = findings[0]
        more = f" (and {len(findings) - 1} more problem(s); run `qstreams contracts lint`)" if len(findings) > 1 else ""
        err = ContractSchemaError(first.message + more, path=path, line=first.line)
        err.findings = findings  # type: ignore[attr-defined]
        raise err
    return _build(data, lines, path)


def canonical_sha256(data: Any) -> str:
    """sha256 over the canonical JSON of a document (sorted keys, no whitespace, dates as ISO)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# --- compile to IR ------------------------------------------------------------------


class _Ctx:
    def __init__(self, lines: dict[Path_, int], path: str) -> None:
        self.lines = lines
        self.path = path

    def error(self, message: str, where: Path_, cls: type[ContractError] = UnsupportedRuleError) -> ContractError:
        field = ".".join(str(p) for p in where)
        return cls(message, path=self.path, line=_line(self.lines, where), field=field)

    def line(self, where: Path_) -> int | None:
        return _line(self.lines, where)


def _build(data: dict[str, Any], lines: dict[Path_, int], path: str) -> Contract:
    ctx = _Ctx(lines, path)
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
    if not schemas:
        raise ctx.error("the contract has no schema objects to validate", ("schema",), ContractSchemaError)
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
    return Owner(
        team=team_name,
        members=tuple(str(m.get("username") or m.get("name")) for m in members if m.get("username") or m.get("name")),
        roles=tuple(str(r.get("role")) for r in data.get("roles") or [] if r.get("role")),
        support_channel=channel.get("channel"),
        support_url=channel.get("url"),
    )


_INT_TYPES: dict[str, pl.DataType] = {
    "int8": pl.Int8(),
    "tinyint": pl.Int8(),
    "int16": pl.Int16(),
    "smallint": pl.Int16(),
    "int32": pl.Int32(),
    "int": pl.Int32(),
    "integer": pl.Int32(),
    "int64": pl.Int64(),
    "bigint": pl.Int64(),
    "long": pl.Int64(),
    "uint8": pl.UInt8(),
    "uint16": pl.UInt16(),
    "uint32": pl.UInt32(),
    "uint64": pl.UInt64(),
}
_FLOAT_TYPES: dict[str, pl.DataType] = {
    "float32": pl.Float32(),
    "float": pl.Float32(),
    "real": pl.Float32(),
    "float64": pl.Float64(),
    "double": pl.Float64(),
}


def _dtype(prop: dict[str, Any], where: Path_, ctx: _Ctx) -> pl.DataType:
    logical = prop.get("logicalType")
    physical = str(prop.get("physicalType") or "").strip().lower()
    base = re.split(r"[\s(\[]", physical, maxsplit=1)[0] if physical else ""
    if logical == "integer":
        return _INT_TYPES.get(base, pl.Int64()) if base != "integer" else pl.Int64()
    if logical == "number":
        if base.startswith("decimal") or base.startswith("numeric"):
            return pl.Float64()
        return _FLOAT_TYPES.get(base, pl.Float64())
    if logical == "string":
        return pl.String()
    if logical == "boolean":
        return pl.Boolean()
    if logical == "date":
        return pl.Date()
    if logical == "time":
        return pl.Time()
    if logical == "timestamp":
        opts = prop.get("logicalTypeOptions") or {}
        unit_match = re.search(r"\b(ms|us|ns)\b|\((3|6|9)\)", physical)
        unit = "us"
        if unit_match:
            unit = unit_match.group(1) or {"3": "ms", "6": "us", "9": "ns"}[unit_match.group(2)]
        tz: str | None = None
        if opts.get("timezone") is True or "tz" in base or "with time zone" in physical or "utc" in physical:
            tz = str(opts.get("defaultTimezone") or "UTC")
        return pl.Datetime(unit, tz)  # type: ignore[arg-type]
    if logical == "array":
        items = prop.get("items") or {}
        if items.get("logicalType") in ("string", "integer", "number", "boolean", "date", "timestamp"):
            return pl.List(_dtype(items, (*where, "items"), ctx))
    kinds = "string, integer, number, boolean, date, time, timestamp, array of those"
    raise ctx.error(
        f"logicalType {logical!r} is not supported for stream validation; supported are {kinds}",
        (*where, "logicalType"),
    )


def _schema_object(obj: dict[str, Any], where: Path_, ctx: _Ctx) -> SchemaObject:
    name = str(obj["name"])
    topic = str(obj.get("physicalName") or name)
    fields: list[Field] = []
    rules: list[Rule] = []
    for i, prop in enumerate(obj.get("properties") or []):
        pw = (*where, "properties", i)
        field, field_rules = _property(prop, pw, ctx)
        if field.name in {f.name for f in fields}:
            raise ctx.error(f"property {field.name!r} is declared twice", pw, ContractSchemaError)
        fields.append(field)
        rules.extend(field_rules)
    field_map = {f.name: f for f in fields}
    for i, q in enumerate(obj.get("quality") or []):
        rule = _quality(q, (*where, "quality", i), ctx, column=None, field=None, obj_name=name, fields=field_map)
        if rule is not None:
            rules.append(rule)
    _dedupe_names(rules, ctx, where)
    return SchemaObject(
        name=name,
        topic=topic,
        fields=tuple(fields),
        rules=tuple(rules),
        description=obj.get("description"),
        line=ctx.line(where),
    )


def _dedupe_names(rules: list[Rule], ctx: _Ctx, where: Path_) -> None:
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


def _property(prop: dict[str, Any], where: Path_, ctx: _Ctx) -> tuple[Field, list[Rule]]:
    name = str(prop["name"])
    dtype = _dtype(prop, where, ctx)
    pk = bool(prop.get("primaryKey"))
    required = bool(prop.get("required")) or pk
    unique = bool(prop.get("unique")) or pk
    line = ctx.line(where)
    field = Field(
        name=name,
        logical_type=str(prop.get("logicalType")),
        dtype=dtype,
        required=required,
        unique=unique,
        primary_key=pk,
        classification=_classification(prop.get("classification")),
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
        if key in opts:
            value = _bound(opts[key], dtype, (*ow, key), ctx)
            rules.append(schema_rule(key, op, (value,), (*ow, key), "logicalTypeOptions"))
    if "multipleOf" in opts:
        rules.append(
            schema_rule("multipleOf", Op.MULTIPLE_OF, (opts["multipleOf"],), (*ow, "multipleOf"), "logicalTypeOptions")
        )
    if "pattern" in opts:
        pattern = str(opts["pattern"])
        _check_regex(pattern, (*ow, "pattern"), ctx)
        rules.append(schema_rule("pattern", Op.STR_CONTAINS, (pattern,), (*ow, "pattern"), "logicalTypeOptions"))
    if "minLength" in opts or "maxLength" in opts:
        args = (opts.get("minLength"), opts.get("maxLength"))
        at = (*ow, "minLength" if "minLength" in opts else "maxLength")
        rules.append(schema_rule("length", Op.STR_LENGTH, args, at, "logicalTypeOptions"))
    for i, q in enumerate(prop.get("quality") or []):
        rule = _quality(q, (*where, "quality", i), ctx, column=name, field=field, obj_name=None, fields={name: field})
        if rule is not None:
            rules.append(rule)
    return field, rules


def _bound(value: Any, dtype: pl.DataType, where: Path_, ctx: _Ctx) -> Any:
    try:
        if isinstance(dtype, pl.Datetime):
            v = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
            if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
                v = dt.datetime.combine(v, dt.time())
            if dtype.time_zone is not None:
                v = v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)
            elif v.tzinfo is not None:
                v = v.astimezone(dt.UTC).replace(tzinfo=None)
            return v
        if isinstance(dtype, pl.Date):
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if dtype.is_numeric():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError
            return value
    except ValueError:
        pass
    else:
        if not (dtype.is_numeric() or isinstance(dtype, (pl.Date, pl.Datetime))):
            raise ctx.error(f"{where[-1]} applies to numbers, dates and timestamps, not {dtype}", where)
        return value
    raise ctx.error(f"{where[-1]} {value!r} is not a valid bound for a {dtype} property", where, ContractSchemaError)


def _check_regex(pattern: str, where: Path_, ctx: _Ctx) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ctx.error(
            f"pattern {pattern!r} is not a valid regular expression: {exc}", where, ContractSchemaError
        ) from None


_METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues", "rowCount")


def _threshold(q: dict[str, Any], where: Path_, ctx: _Ctx) -> Threshold:
    present = [op for op in THRESHOLD_OPERATORS if op in q]
    unit_text = str(q.get("unit") or "rows").lower()
    if unit_text not in ("rows", "percent"):
        raise ctx.error(f"unit {unit_text!r} is not supported; use rows or percent", (*where, "unit"))
    unit = Unit(unit_text)
    if not present:
        return Threshold(unit=unit)
    op = present[0]
    raw = q[op]
    if op in ("mustBeBetween", "mustNotBeBetween"):
        if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(x, (int, float)) for x in raw)):
            raise ctx.error(f"{op} needs two numbers, e.g. [1, 10]", (*where, op), ContractSchemaError)
        return Threshold(op, (float(raw[0]), float(raw[1])), unit)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ctx.error(f"{op} needs a number, got {raw!r}", (*where, op), ContractSchemaError)
    return Threshold(op, float(raw), unit)


def _quality(
    q: dict[str, Any],
    where: Path_,
    ctx: _Ctx,
    *,
    column: str | None,
    field: Field | None,
    obj_name: str | None,
    fields: dict[str, Field],
) -> Rule | None:
    kind = q.get("type") or ("library" if "metric" in q or "rule" in q else None)
    if kind == "text":
        return None  # human-readable only
    severity_text = str(q.get("severity") or "error").lower()
    try:
        severity = Severity(severity_text)
    except ValueError:
        raise ctx.error(
            f"severity {severity_text!r} is not supported; use error, warning or info", (*where, "severity")
        ) from None
    threshold = _threshold(q, where, ctx)
    common: dict[str, Any] = {
        "severity": severity,
        "threshold": threshold,
        "dimension": q.get("dimension"),
        "description": q.get("description"),
        "line": ctx.line(where),
    }
    label = column or obj_name or "object"
    if kind == "library":
        metric = q.get("metric") or q.get("rule")
        op, args, col = _library(metric, q, where, ctx, column, field)
        rule_name = q.get("name") or f"{label}:{metric}"
        return Rule(
            name=str(rule_name), op=op, args=args, check=check_label(op, args), column=col, source="quality", **common
        )
    if kind == "sql":
        query = str(q["query"])
        table = obj_name or "batch"
        for token in ("${object}", "{object}", "${table}", "{table}"):
            query = query.replace(token, table)
        if column is not None:
            for token in ("${property}", "{property}", "${column}", "{column}"):
                query = query.replace(token, column)
        if not re.match(r"(?is)^\s*(select|with)\b", query):
            raise ctx.error("a sql rule must be a single SELECT query returning one value", (*where, "query"))
        rule_name = q.get("name") or f"{label}:sql#{where[-1]}"
        return Rule(name=str(rule_name), op=Op.SQL, args=(query,), check="sql", column=None, source="sql", **common)
    if kind == "custom":
        engine = str(q.get("engine", "")).lower()
        impl = q.get("implementation")
        if not isinstance(impl, str):
            raise ctx.error("a custom rule's implementation must be a string", (*where, "implementation"))
        if engine == "pandera":
            if column is None:
                raise ctx.error("a pandera check must be declared on a property (it checks one column)", where)
            try:
                method, kwargs = expressions.parse_check_call(impl)
            except expressions.ExpressionError as exc:
                raise ctx.error(str(exc), (*where, "implementation")) from None
            op, args = _pandera_call(method, kwargs, where, ctx)
            rule_name = q.get("name") or f"{label}:{op.value}"
            return Rule(
                name=str(rule_name),
                op=op,
                args=args,
                check=check_label(op, args),
                column=column,
                source="custom",
                **common,
            )
        if engine in ("expression", "polars"):
            try:
                node = expressions.parse_expression(impl)
            except expressions.ExpressionError as exc:
                raise ctx.error(str(exc), (*where, "implementation")) from None
            unknown = expressions.columns(node) - set(fields) if obj_name is not None else set()
            if unknown:
                raise ctx.error(
                    f"expression reads unknown properties: {', '.join(sorted(unknown))}", (*where, "implementation")
                )
            rule_name = q.get("name") or f"{label}:expression#{where[-1]}"
            op, args = Op.EXPRESSION, (node,)
            return Rule(
                name=str(rule_name),
                op=op,
                args=args,
                check=check_label(op, args),
                column=None,
                source="custom",
                **common,
            )
        raise ctx.error(
            f"custom engine {engine!r} is not supported; use `pandera` (a built-in Check call) "
            "or `expression` (a row predicate)",
            (*where, "engine"),
        )
    raise ctx.error(f"quality type {kind!r} is not supported; use library, sql, custom or text", (*where, "type"))


def _library(
    metric: Any, q: dict[str, Any], where: Path_, ctx: _Ctx, column: str | None, field: Field | None
) -> tuple[Op, tuple[Any, ...], str | None]:
    args_in = q.get("arguments") or {}
    if metric == "rowCount":
        return Op.ROW_COUNT, (), None
    if metric not in _METRICS:
        raise ctx.error(f"metric {metric!r} is not supported; supported are {', '.join(_METRICS)}", (*where, "metric"))
    if column is None:
        raise ctx.error(f"metric {metric} must be declared on a property", (*where, "metric"))
    if metric == "nullValues":
        return Op.NOT_NULL, (), column
    if metric == "duplicateValues":
        return Op.UNIQUE, (), column
    if metric == "missingValues":
        values = args_in.get("missingValues", [None, ""])
        if not isinstance(values, list):
            raise ctx.error("missingValues needs a list, e.g. [null, '', 'N/A']", (*where, "arguments"))
        return Op.MISSING, (tuple(values),), column
    # invalidValues
    if "validValues" in args_in:
        values = args_in["validValues"]
        if not isinstance(values, list) or not values:
            raise ctx.error("validValues needs a non-empty list", (*where, "arguments", "validValues"))
        return Op.ISIN, (tuple(values),), column
    if "pattern" in args_in:
        _check_regex(str(args_in["pattern"]), (*where, "arguments", "pattern"), ctx)
        return Op.STR_CONTAINS, (str(args_in["pattern"]),), column
    raise ctx.error("invalidValues needs arguments.validValues or arguments.pattern", (*where, "arguments"))


_PANDERA_OPS: dict[str, Op] = {
    "equal_to": Op.EQ,
    "eq": Op.EQ,
    "not_equal_to": Op.NE,
    "ne": Op.NE,
    "greater_than": Op.GT,
    "gt": Op.GT,
    "greater_than_or_equal_to": Op.GE,
    "ge": Op.GE,
    "less_than": Op.LT,
    "lt": Op.LT,
    "less_than_or_equal_to": Op.LE,
    "le": Op.LE,
    "in_range": Op.IN_RANGE,
    "between": Op.IN_RANGE,
    "isin": Op.ISIN,
    "notin": Op.NOTIN,
    "str_matches": Op.STR_MATCHES,
    "str_contains": Op.STR_CONTAINS,
    "str_startswith": Op.STR_STARTSWITH,
    "str_endswith": Op.STR_ENDSWITH,
    "str_length": Op.STR_LENGTH,
}


def _pandera_call(method: str, kw: dict[str, Any], where: Path_, ctx: _Ctx) -> tuple[Op, tuple[Any, ...]]:
    op = _PANDERA_OPS[method]
    try:
        if op is Op.IN_RANGE:
            return op, (kw["min_value"], kw["max_value"], kw.get("include_min", True), kw.get("include_max", True))
        if op in (Op.ISIN, Op.NOTIN):
            values = next(iter(kw.values()))
            return op, (tuple(values),)
        if op is Op.STR_LENGTH:
            if kw.get("min_value") is None and kw.get("max_value") is None:
                raise KeyError("min_value")
            return op, (kw.get("min_value"), kw.get("max_value"))
        (value,) = kw.values()
        return op, (value,)
    except (KeyError, ValueError, TypeError, StopIteration):
        raise ctx.error(f"Check.{method} is missing required arguments", (*where, "implementation")) from None
