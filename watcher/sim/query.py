"""The query engines: MDA ``/v1/data/objects/query/{Object}`` (``name`` conditions,
limit/offset) and Cockpit CTA/goal lists (``fieldName`` conditions, pageSize/pageNumber).

Paging without a filter or order is a slice of a cached key list, so a 5000-record page
costs only its projection. Filtered and sorted key lists are cached per tenant version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from watcher.sim.data import DAY_MS
from watcher.sim.expr import ExpressionError, Predicate, compile_expression
from watcher.sim.fields import (
    Path,
    QueryError,
    parse_bool,
    parse_date_value,
    parse_number,
    render,
    resolve_path,
)
from watcher.sim.options import DateMode
from watcher.sim.schema import CTA, SCHEMAS, ObjectSchema

if TYPE_CHECKING:
    from watcher.sim.tenant import Tenant

OPERATORS = frozenset(
    ("EQ", "NE", "GT", "GTE", "LT", "LTE", "IN", "NOT_IN", "BTW", "CONTAINS", "STARTS_WITH",
     "ENDS_WITH", "IS_NULL", "IS_NOT_NULL", "INCLUDES")
)  # fmt: skip
# What the Cockpit samples and operator table show; strict mode refuses the rest.
COCKPIT_DOC_OPERATORS = frozenset(("EQ", "NE", "INCLUDES", "BTW", "IS_NULL", "IS_NOT_NULL"))
_DAY_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CACHE_SIZE = 32
COCKPIT_DEFAULT_FIELDS = (
    "Gsid", "Name", "CompanyId", "CompanyId__gr.Name", "EntityType", "OwnerId", "TypeId",
    "TypeId__gr.Name", "StatusId", "StatusId__gr.Name", "PriorityId__gr.Name", "DueDate",
    "IsClosed", "IsImportant", "ModifiedDate",
)  # fmt: skip


def _bad(desc: str, code: str = "GSOBJ_1008") -> QueryError:
    return QueryError(400, code, desc)


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]


# -- conditions -----------------------------------------------------------------------------


def _coerce(path: Path, column: str, value: Any) -> Any:
    t = path.field.type
    if t in ("DATE", "DATETIME"):
        return parse_date_value(path.field, column, value)
    if t in ("CURRENCY", "NUMBER"):
        return parse_number(column, value)
    if t == "BOOLEAN":
        return parse_bool(column, value)
    return value if value is None else str(value)


def _match_picklist(tenant: Tenant, path: Path, values: list[Any]) -> set[str]:
    """Picklist filters accept item GSIDs or labels (the doc sample filters Stage by label)."""
    category = path.field.target or ""
    out = set()
    for v in values:
        text = str(v)
        out.add(text)
        gsid = tenant.picklists.by_label.get((category, text.lower()))
        if gsid:
            out.add(gsid)
    return out


def _strict_cockpit(path: Path, op: str, column: str, cond: dict[str, Any]) -> None:
    """Refuse what no Cockpit sample shows, as a live tenant does (COCKPIT_5102)."""
    if op not in COCKPIT_DOC_OPERATORS:
        raise QueryError(400, "COCKPIT_5102", f"Invalid operator {op} for {column}", {})
    if path.field.type not in ("DATE", "DATETIME") or "literal" in cond:
        return
    for value in cond.get("value") or []:
        if not isinstance(value, str) or not _DAY_TEXT.match(value):
            raise QueryError(400, "COCKPIT_5102", f"Invalid date value {value} for {column}", {})


def compile_condition(
    tenant: Tenant, schema: ObjectSchema, cond: Any, key: str, today_ms: int
) -> tuple[str, Predicate]:
    """One condition -> (alias, predicate). ``key`` is ``name`` (MDA) or ``fieldName``."""
    if not isinstance(cond, dict):
        raise _bad("Invalid where clause: each condition must be an object")
    alias = str(cond.get("alias") or "")
    op = str(cond.get("operator") or "").upper()
    strict = key == "fieldName" and tenant.options.strict_docs
    if strict and op not in COCKPIT_DOC_OPERATORS:
        column = cond.get(key)
        raise QueryError(400, "COCKPIT_5102", f"Invalid operator {op} for {column}", {})
    if op not in OPERATORS:
        raise _bad(f"Invalid operator {cond.get('operator')!r} in condition {alias or '?'}")
    if cond.get("associatedRecord"):
        return alias, lambda r: True  # associated records are not simulated
    column = cond.get(key)
    if not isinstance(column, str) or not column:
        raise _bad(f"Invalid where clause: condition {alias or '?'} has no '{key}'")
    path = resolve_path(tenant, schema, column)
    if path is None:
        raise _bad(f"Invalid field in where clause - {column}")
    if strict:
        _strict_cockpit(path, op, column, cond)
    get = path.get
    truncate = False
    if "literal" in cond and cond.get("value") is None:
        if str(cond["literal"]).upper() != "TODAY" or path.field.type not in ("DATE", "DATETIME"):
            raise _bad(f"Invalid literal {cond['literal']!r} for column {column}")
        raw_values: list[Any] = [today_ms]
        truncate = True
    else:
        raw = cond.get("value", [])
        if not isinstance(raw, list):
            raise _bad(
                f"Invalid where clause: 'value' of condition {alias or '?'} must be an array"
            )
        raw_values = raw
    if truncate:
        base = get

        def get(r: dict[str, Any]) -> Any:
            v = base(r)
            return v - v % DAY_MS if isinstance(v, int) else v

    if op == "IS_NULL":
        return alias, lambda r: get(r) in (None, "")
    if op == "IS_NOT_NULL":
        return alias, lambda r: get(r) not in (None, "")
    if not raw_values:
        raise _bad(f"Invalid where clause: condition {alias or '?'} has no value")
    if path.field.type == "PICKLIST" and op in ("EQ", "NE", "IN", "NOT_IN", "INCLUDES"):
        allowed = _match_picklist(tenant, path, raw_values)
        if op in ("NE", "NOT_IN"):
            return alias, lambda r: get(r) not in allowed
        return alias, lambda r: get(r) in allowed
    values = [_coerce(path, column, v) for v in raw_values]
    return alias, _predicate(op, get, values, column)


def _predicate(
    op: str, get: Callable[[dict[str, Any]], Any], values: list[Any], column: str
) -> Predicate:
    first = values[0]
    if op in ("EQ", "INCLUDES") and len(values) == 1:
        return lambda r: get(r) == first
    if op in ("IN", "EQ", "INCLUDES"):
        allowed = set(values)
        return lambda r: get(r) in allowed
    if op in ("NE", "NOT_IN"):
        banned = set(values)
        return lambda r: get(r) not in banned
    if op == "BTW":
        if len(values) != 2:
            raise _bad(f"Operator BTW needs two values for column {column}")
        lo, hi = values
        return lambda r: (v := get(r)) is not None and lo <= v <= hi
    if op in ("GT", "GTE", "LT", "LTE"):
        compare: Callable[[Any], bool] = {
            "GT": lambda v: v > first,
            "GTE": lambda v: v >= first,
            "LT": lambda v: v < first,
            "LTE": lambda v: v <= first,
        }[op]
        return lambda r: (v := get(r)) is not None and compare(v)
    needle = str(first).lower()
    text: Callable[[str], bool] = {
        "CONTAINS": lambda s: needle in s,
        "STARTS_WITH": lambda s: s.startswith(needle),
        "ENDS_WITH": lambda s: s.endswith(needle),
    }[op]
    return lambda r: (v := get(r)) is not None and text(str(v).lower())


def compile_where(
    tenant: Tenant, schema: ObjectSchema, where: Any, key: str, today_ms: int
) -> Predicate | None:
    if where in (None, {}):
        return None
    if not isinstance(where, dict):
        raise _bad("Invalid where clause: must be an object")
    conds = where.get("conditions") or []
    if not isinstance(conds, list):
        raise _bad("Invalid where clause: 'conditions' must be an array")
    if not conds:
        return None
    terms: dict[str, Predicate] = {}
    for i, cond in enumerate(conds):
        alias, pred = compile_condition(tenant, schema, cond, key, today_ms)
        terms[alias.upper() or f"#{i}"] = pred
    try:
        return compile_expression(where.get("expression"), terms)
    except ExpressionError as exc:
        raise _bad(f"Invalid where expression: {exc}") from None


# -- ordering and key lists -------------------------------------------------------------------


def compile_order(tenant: Tenant, schema: ObjectSchema, order_by: Any) -> list[tuple[Path, bool]]:
    if order_by in (None, {}):
        return []
    if not isinstance(order_by, dict):
        raise _bad("Invalid orderBy: must be an object of field -> 'asc' | 'desc'")
    out = []
    for column, direction in order_by.items():
        path = resolve_path(tenant, schema, column)
        if path is None:
            raise _bad(f"Invalid field in orderBy - {column}")
        if str(direction).lower() not in ("asc", "desc"):
            raise _bad(f"Invalid sort order {direction!r} for {column}; use asc or desc")
        out.append((path, str(direction).lower() == "desc"))
    return out


def matching_keys(
    tenant: Tenant,
    *,
    records: dict[str, dict[str, Any]],
    natural: list[str],
    where: Predicate | None,
    order: list[tuple[Path, bool]],
    signature: tuple[Any, ...],
) -> list[str]:
    """Keys matching ``where`` in ``order``; cached per (signature, tenant.version)."""
    if where is None and not order:
        return natural
    cached = tenant.cache.get(signature)
    if cached is not None and cached[0] == tenant.version:
        return cached[1]
    keys = natural if where is None else [k for k in natural if where(records[k])]
    if order:
        keys = list(keys)
        for path, desc in reversed(order):
            get = path.get
            keys.sort(key=lambda k: _sort_key(get(records[k])), reverse=desc)
    if len(tenant.cache) >= _CACHE_SIZE:
        tenant.cache.pop(next(iter(tenant.cache)))
    tenant.cache[signature] = (tenant.version, keys)
    return keys


def _sort_key(value: Any) -> tuple[bool, Any]:
    return (value is None, value if value is not None else 0)


# -- select ----------------------------------------------------------------------------------


def compile_select(
    tenant: Tenant, schema: ObjectSchema, select: Iterable[str], *, canonical_keys: bool
) -> tuple[list[tuple[str, Path]], list[str]]:
    """(output key, path) pairs and the names that did not resolve."""
    out: list[tuple[str, Path]] = []
    unknown: list[str] = []
    seen: set[str] = set()
    for text in select:
        path = resolve_path(tenant, schema, text) if isinstance(text, str) else None
        if path is None:
            unknown.append(str(text))
            continue
        key = path.field.name if canonical_keys and "__gr." not in text else text
        if key not in seen:
            seen.add(key)
            out.append((key, path))
    return out, unknown


def project(
    records: dict[str, dict[str, Any]],
    keys: Iterable[str],
    select: list[tuple[str, Path]],
    modes: Callable[[str], DateMode],
) -> list[dict[str, Any]]:
    plan = [(key, path.get, path.field, modes(key)) for key, path in select]
    dated = any(fd.type in ("DATE", "DATETIME") for _, _, fd, _ in plan)
    rows = []
    for k in keys:
        r = records[k]
        if dated:
            rows.append({key: render(fd, get(r), mode) for key, get, fd, mode in plan})
        else:
            rows.append({key: get(r) for key, get, _, _ in plan})
    return rows


# -- the two request styles -------------------------------------------------------------------


def _int(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"Invalid value for '{name}': {value!r} (expected an integer)")
    return value


def _modes(tenant: Tenant, object_name: str) -> Callable[[str], DateMode]:
    options = tenant.options
    return lambda key: options.date_mode(object_name, key)


def mda_query(tenant: Tenant, object_name: str, body: dict[str, Any]) -> Page:
    """Serve one MDA query page (``limit``/0-based ``offset``)."""
    schema = SCHEMAS[object_name]
    select = body.get("select")
    if not isinstance(select, list) or not select:
        raise _bad("Invalid request: 'select' must be a non-empty array of field names")
    plan, unknown = compile_select(tenant, schema, select, canonical_keys=False)
    if unknown:
        raise _bad(f"Invalid field(s) in select clause - {', '.join(unknown)}")
    limit = _int(body, "limit", 100)
    offset = _int(body, "offset", 0)
    if limit > tenant.options.max_limit:
        if tenant.options.over_limit == "error":
            raise _bad(f"Invalid limit {limit}: the maximum is {tenant.options.max_limit}")
        limit = tenant.options.max_limit
    if limit < 1 or offset < 0:
        raise _bad(f"Invalid limit/offset {limit}/{offset}: limit must be >= 1, offset >= 0")
    table = tenant.table(object_name)
    today = tenant.now_ms() // DAY_MS * DAY_MS
    where = compile_where(tenant, schema, body.get("where"), "name", today)
    order = compile_order(tenant, schema, body.get("orderBy"))
    sig = ("mda", object_name, _dump(body.get("where")), _dump(body.get("orderBy")))
    keys = matching_keys(
        tenant,
        records=table.records,
        natural=table.order(),
        where=where,
        order=order,
        signature=sig,
    )
    return Page(
        project(table.records, keys[offset : offset + limit], plan, _modes(tenant, object_name))
    )


def cockpit_query(
    tenant: Tenant,
    object_name: str,
    body: dict[str, Any],
    *,
    deleted: bool = False,
) -> Page:
    """Serve one Cockpit list page (``pageSize`` <= 1000, 1-based ``pageNumber``)."""
    schema = SCHEMAS[object_name]
    select = body.get("select") or []
    if not isinstance(select, list):
        raise QueryError(400, "COCKPIT_5101", f"Invalid fields in select clause - {select}", {})
    wanted = list(COCKPIT_DEFAULT_FIELDS) if tenant.options.cockpit_default_fields else ["Gsid"]
    if not select:
        wanted = list(COCKPIT_DEFAULT_FIELDS) if object_name != "cs_goal" else list(schema.names)
    plan, unknown = compile_select(tenant, schema, [*wanted, *select], canonical_keys=True)
    if unknown:
        raise QueryError(
            400, "COCKPIT_5101", f"Invalid fields in select clause - {', '.join(unknown)}", {}
        )
    size = _int(body, "pageSize", 100)
    number = _int(body, "pageNumber", 1)
    if size > tenant.options.max_page_size:
        if tenant.options.over_limit == "error":
            raise _bad(f"Invalid pageSize {size}: the maximum is {tenant.options.max_page_size}")
        size = tenant.options.max_page_size
    if size < 1 or number < 1:
        raise _bad(f"Invalid pageSize/pageNumber {size}/{number}: both must be >= 1")
    deleted = deleted or (object_name == CTA and body.get("includeonlyDeletedRecords") is True)
    if deleted:
        tenant.purge()
        records = tenant.deleted_ctas
        natural = list(records)
    else:
        table = tenant.table(object_name)
        records, natural = table.records, table.order()
    today = tenant.now_ms() // DAY_MS * DAY_MS
    where = compile_where(tenant, schema, body.get("where"), "fieldName", today)
    sig = ("cockpit", object_name, deleted, today, _dump(body.get("where")))
    if deleted:
        keys = [k for k in natural if where is None or where(records[k])]
    else:
        keys = matching_keys(
            tenant, records=records, natural=natural, where=where, order=[], signature=sig
        )
    start = (number - 1) * size
    if tenant.options.cockpit_unstable_order and keys:
        keys = list(keys)
        tenant.fault_rng.shuffle(keys)
    return Page(project(records, keys[start : start + size], plan, _modes(tenant, object_name)))


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
