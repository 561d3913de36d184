"""Request bodies for the two query styles Gainsight uses (pure).

* **MDA query** (``POST /v1/data/objects/query/{Object}``): conditions keyed
  ``name``, ``limit`` (<= 5000) and 0-based ``offset``.
* **Cockpit** (``POST /v2/cockpit/cta/list``, ``api = "cockpit"``): conditions keyed
  ``fieldName``, ``pageSize`` (<= 1000) and 1-based ``pageNumber``.

Both take ``select``, ``where = {conditions: [...], expression: "A AND B"}`` with
single-letter aliases, and ``value`` is always a list.

Only what Gainsight documents is sent to the Cockpit list: the operators in
:data:`COCKPIT_OPERATORS` and dates as ``yyyy-MM-dd`` (whole days). Every
DATETIME filter value sent to the query route carries its zone (``+00:00``).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from watcher.config import SourceConfig
from watcher.gainsight.routes import (
    COCKPIT_KEY_BATCH,
    COCKPIT_MAX_PAGE_SIZE,
    CTA_DELETED_PATH,
    CTA_LIST_PATH,
    DELETE_LOG_PATH,
    MDA_MAX_LIMIT,
    MDA_QUERY_PREFIX,
    page_size_of,
    paging_of,
)

# Route facts live in gainsight/routes.py; the names imported from there stay
# importable from here for the query helpers' callers.
__all__ = [
    "COCKPIT_KEY_BATCH",
    "COCKPIT_MAX_PAGE_SIZE",
    "COCKPIT_OPERATORS",
    "CTA_DELETED_PATH",
    "CTA_LIST_PATH",
    "DAY_ZONE_SLACK",
    "DELETE_LOG_PATH",
    "MDA_MAX_LIMIT",
    "MDA_QUERY_PREFIX",
    "OPERATORS",
    "Condition",
    "Direction",
    "Style",
    "alias",
    "day_value",
    "delete_log_value",
    "iso_filter_value",
    "key_lookup",
    "keys_in",
    "mda_object_of",
    "modified_since",
    "page_size_of",
    "paging_of",
    "query_body",
    "render_where",
    "select_of",
    "style_of",
]

Style = Literal["mda", "cockpit"]
Direction = Literal["asc", "desc"]


OPERATORS = frozenset(
    {
        "EQ",
        "NE",
        "GT",
        "GTE",
        "LT",
        "LTE",
        "IN",
        "NOT_IN",
        "BTW",
        "CONTAINS",
        "STARTS_WITH",
        "ENDS_WITH",
        "IS_NULL",
        "IS_NOT_NULL",
        "INCLUDES",
    }
)


# The operators the Cockpit samples and operator table show; nothing else is sent there.
COCKPIT_OPERATORS = frozenset({"EQ", "NE", "INCLUDES", "BTW", "IS_NULL", "IS_NOT_NULL"})
DAY_ZONE_SLACK = timedelta(hours=14)  # the widest distance of any zone from UTC


@dataclass(frozen=True)
class Condition:
    """One filter term; rendered per API style by :func:`render_where`."""

    field: str
    operator: str
    values: Sequence[Any] = ()
    literal: str | None = None  # Cockpit only, e.g. "TODAY" instead of values

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise ValueError(f"unknown operator {self.operator!r}")
        if isinstance(self.values, str | bytes):
            raise TypeError("values must be a sequence of values, not one string")
        object.__setattr__(self, "values", tuple(self.values))

    def render(self, style: Style, alias: str) -> dict[str, Any]:
        key = "name" if style == "mda" else "fieldName"
        out: dict[str, Any] = {key: self.field, "alias": alias, "operator": self.operator}
        if self.literal is not None and style == "cockpit":
            out["literal"] = self.literal
        else:
            out["value"] = list(self.values)
        return out


def alias(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA" (spreadsheet style)."""
    letters = string.ascii_uppercase
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = letters[rem] + out
    return out


def render_where(
    conditions: Sequence[Condition], style: Style, expression: str | None = None
) -> dict[str, Any] | None:
    """``{"conditions": [...], "expression": ...}`` or ``None`` when there is no filter."""
    if not conditions:
        return None
    rendered = [c.render(style, alias(i)) for i, c in enumerate(conditions)]
    expr = expression or " AND ".join(alias(i) for i in range(len(conditions)))
    return {"conditions": rendered, "expression": expr}


def style_of(source: SourceConfig) -> Style:
    """MDA body for offset paging, Cockpit body for page paging."""
    return "mda" if paging_of(source) == "offset" else "cockpit"


def select_of(source: SourceConfig, extra: Sequence[str] = ()) -> list[str]:
    """The source's select list with the key and modified field guaranteed, order kept.

    Matching is exact: MDA replies are keyed by the selected text, so the key must
    be selected spelled as ``source.key`` even if a differently cased copy is there.
    """
    return list(dict.fromkeys((*source.select, source.key, source.modified_field, *extra)))


def query_body(
    *,
    style: Style,
    select: Sequence[str],
    page_size: int,
    page_index: int,
    conditions: Sequence[Condition] = (),
    expression: str | None = None,
    order_by: Mapping[str, Direction] | None = None,
) -> dict[str, Any]:
    """The body of page ``page_index`` (0-based) in the given style."""
    body: dict[str, Any] = {"select": list(select)}
    where = render_where(conditions, style, expression)
    if where is not None:
        body["where"] = where
    if order_by:
        body["orderBy"] = dict(order_by)
    if style == "mda":
        body["limit"] = page_size
        body["offset"] = page_index * page_size
    else:
        body["pageSize"] = page_size
        body["pageNumber"] = page_index + 1
    return body


def iso_filter_value(when: datetime) -> str:
    """Filter text for DATETIME comparisons: ISO-8601 with offset, seconds grain, UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")


def delete_log_value(when: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in UTC, the form the delete-log samples use."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def day_value(when: datetime) -> str:
    """``yyyy-MM-dd`` of ``when`` in UTC (the date form the Cockpit samples use)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def modified_since(
    source: SourceConfig, since: datetime, *, until: datetime | None = None
) -> Condition:
    """The incremental filter.

    Query route: ``<modified_field> GTE <since>`` as ISO-8601 with ``+00:00``.
    Cockpit list: ``<modified_field> BTW [day(since), day(until)]`` in whole days
    (the documented operator and date form); ``until`` defaults to ``since`` and the
    caller passes tomorrow so that nothing modified today is cut off. A date carries
    no zone, so both ends reach :data:`DAY_ZONE_SLACK` further out: whichever zone the
    tenant reads a day in, the window is covered (re-reads are harmless).
    """
    if style_of(source) == "cockpit":
        end = until if until is not None else since
        return Condition(
            source.modified_field,
            "BTW",
            (day_value(since - DAY_ZONE_SLACK), day_value(end + DAY_ZONE_SLACK)),
        )
    return Condition(source.modified_field, "GTE", (iso_filter_value(since),))


def keys_in(source: SourceConfig, keys: Sequence[str]) -> Condition:
    return Condition(source.key, "IN", tuple(keys))


def key_lookup(
    source: SourceConfig, keys: Sequence[str]
) -> tuple[tuple[Condition, ...], str | None]:
    """Conditions (and expression) that select ``keys``.

    Query route: one ``key IN [...]``. Cockpit list: ``key EQ k`` terms joined
    with ``OR`` (``IN`` is not among its documented operators); at most
    :data:`COCKPIT_KEY_BATCH` keys per call.
    """
    if style_of(source) == "cockpit":
        conds = tuple(Condition(source.key, "EQ", (k,)) for k in keys)
        return conds, " OR ".join(alias(i) for i in range(len(conds)))
    return (keys_in(source, keys),), None


def mda_object_of(path: str) -> str | None:
    """``/v1/data/objects/query/Company`` -> ``Company``; other paths -> ``None``."""
    if path.startswith(MDA_QUERY_PREFIX):
        name = path[len(MDA_QUERY_PREFIX) :].strip("/")
        return name or None
    return None
