"""Field paths (``Name``, ``Csm__gr.Email``, ``CompanyId__gr.Csm__gr.Name``), value
rendering (epoch ms or ISO) and filter-value parsing for the simulated tenant."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from watcher.dates import format_utc, from_epoch_ms, parse_iso, to_epoch_ms
from watcher.sim.data import DAY_MS
from watcher.sim.options import DateMode
from watcher.sim.schema import SCHEMAS, FieldDef, ObjectSchema

if TYPE_CHECKING:
    from watcher.sim.tenant import Tenant

Getter = Callable[[dict[str, Any]], Any]
_MDY = re.compile(r"^(\d{2})-(\d{2})-(\d{4})$")
_MAX_LOOKUP_DEPTH = 2


class QueryError(Exception):
    """A request the simulated API rejects with an error envelope."""

    def __init__(self, status: int, code: str, desc: str, data: Any = None) -> None:
        super().__init__(desc)
        self.status = status
        self.code = code
        self.desc = desc
        self.data = data


@dataclass(frozen=True)
class Path:
    """A resolved field path: the final field and how to read its raw value."""

    text: str
    field: FieldDef
    get: Getter
    is_label: bool = False  # PICKLIST__gr.Name: the value is the item's label


def resolve_path(tenant: Tenant, schema: ObjectSchema, text: str, depth: int = 0) -> Path | None:
    """Resolve ``text`` against ``schema`` (case-insensitive), or ``None`` if unknown."""
    head, sep, rest = text.partition("__gr.")
    if not sep:
        fd = schema.field(text)
        if fd is None:
            return None
        name = fd.name
        return Path(text, fd, lambda r: r.get(name))
    fd = schema.field(head)
    if fd is None or depth >= _MAX_LOOKUP_DEPTH:
        return None
    name = fd.name
    if fd.type == "PICKLIST":
        if rest.lower() not in ("name", "label"):
            return None
        labels = tenant.picklists.labels
        label_fd = FieldDef(f"{name}__gr.Name", "STRING")
        return Path(text, label_fd, lambda r: labels.get(r.get(name) or ""), is_label=True)
    if fd.type != "LOOKUP" or fd.target is None:
        return None
    target = tenant.tables[fd.target].records
    inner = resolve_path(tenant, SCHEMAS[fd.target], rest, depth + 1)
    if inner is None:
        return None
    inner_get = inner.get

    def get(record: dict[str, Any]) -> Any:
        linked = target.get(record.get(name) or "")
        return inner_get(linked) if linked is not None else None

    return Path(text, inner.field, get, inner.is_label)


def render(fd: FieldDef, value: Any, mode: DateMode) -> Any:
    """Internal value -> JSON value: dates as epoch ms or ISO (DATE as ``yyyy-MM-dd``)."""
    if value is None or fd.type not in ("DATE", "DATETIME"):
        return value
    if mode == "epoch_ms":
        return value
    if fd.type == "DATE":
        return from_epoch_ms(value).strftime("%Y-%m-%d")
    return format_utc(from_epoch_ms(value))


def parse_date_value(fd: FieldDef, column: str, value: Any) -> int:
    """A filter value for a DATE/DATETIME column -> epoch ms (DATE: midnight UTC).

    Accepts ISO-8601 with or without offset, ``yyyy-MM-dd HH:mm:ss``, ``yyyy-MM-dd``,
    ``MM-dd-yyyy`` and epoch-ms numbers. Values without an offset are read as UTC.
    """
    ms: int | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        ms = int(value)
    elif isinstance(value, str):
        parsed = parse_iso(value)
        if parsed is None and (m := _MDY.match(value.strip())):
            try:
                parsed = datetime(int(m[3]), int(m[1]), int(m[2]), tzinfo=UTC)
            except ValueError:
                parsed = None
        if parsed is not None:
            ms = to_epoch_ms(parsed)
    if ms is None:
        if fd.type == "DATE":
            raise QueryError(400, "GSOBJ_1006", f"Invalid Date format for column {column}: {value}")
        raise QueryError(400, "GSOBJ_1005", f"Invalid DateTime format for column {column}: {value}")
    return ms - ms % DAY_MS if fd.type == "DATE" else ms


def parse_number(column: str, value: Any) -> float:
    if isinstance(value, bool):
        raise QueryError(400, "GSOBJ_1002", f"Invalid value for column {column}: {value}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise QueryError(400, "GSOBJ_1002", f"Invalid value for column {column}: {value}") from None


def parse_bool(column: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise QueryError(400, "GSOBJ_1002", f"Invalid value for column {column}: {value}")
