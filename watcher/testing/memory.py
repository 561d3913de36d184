"""An in-memory tenant for tests and benchmarks: :class:`MemorySource` satisfies the poll
engine's :class:`~watcher.poll.source.RecordSource` with the Gainsight client's paging
semantics: offset pages ordered by key (or ``order_by``), filtered with any of
Gainsight's operators (:func:`matches`).
"""

from __future__ import annotations

import operator
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from watcher.config import SourceConfig
from watcher.dates import format_utc, normalize_date, parse_iso
from watcher.gainsight.budget import Priority
from watcher.gainsight.envelope import reply_digest
from watcher.gainsight.query import Condition, Direction
from watcher.gainsight.rows import read_page

Record = dict[str, Any]


@dataclass(frozen=True)
class MemoryPage:
    records: Sequence[Record]  # a list, or RawRows as the client's pages carry
    number: int
    calls: int = 1
    digest: int | None = None  # of the rows, as a reply's digest is (page_digest)


def page_digest(records: Sequence[Mapping[str, Any]]) -> int | None:
    """:func:`~watcher.gainsight.envelope.reply_digest` of the rows as they would be
    sent (``None`` for rows JSON cannot carry)."""
    try:
        return reply_digest(orjson.dumps(list(records)), None)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class MemoryDeleted:
    key: str
    deleted_at: datetime | None


class MemorySource:
    """An in-memory tenant: ``records`` (key -> record) read with offset paging.

    ``before_page(number)`` runs before each page is cut, so a test can mutate
    ``records`` between page requests exactly as a live tenant would change.
    ``shuffle`` gives each page request a new row order, as Cockpit lists may.
    Each page carries a digest of its rows, as the client's pages carry one of the
    reply (``digests=False``: none, so a sweep does every page's work), and its rows
    are read as the client reads a reply's (``raw=False``: handed over as dicts).
    """

    def __init__(
        self,
        records: dict[str, dict[str, Any]] | None = None,
        *,
        page_size: int = 100,
        before_page: Callable[[int], None] | None = None,
        deleted: list[MemoryDeleted] | None = None,
        shuffle: random.Random | None = None,
        digests: bool = True,
        raw: bool = True,
    ) -> None:
        self.records: dict[str, dict[str, Any]] = records if records is not None else {}
        self.page_size = page_size
        self.before_page = before_page
        self.deleted = deleted if deleted is not None else []
        self.calls = 0
        self.shuffle = shuffle  # each page request sees a new order (Cockpit lists may)
        self.digests = digests
        self.raw = raw

    def _matches(self, record: Mapping[str, Any], conditions: Sequence[Condition]) -> bool:
        """Every condition holds for ``record`` (all of Gainsight's operators)."""
        return all(matches(record.get(cond.field), cond) for cond in conditions)

    async def iter_pages(
        self,
        source: SourceConfig,
        *,
        conditions: Sequence[Condition] = (),
        order_by: Mapping[str, Direction] | None = None,
        priority: Priority = Priority.LOW,
    ) -> AsyncIterator[MemoryPage]:
        order = list(order_by or {source.key: "asc"})
        number = 0
        while True:
            number += 1
            if self.before_page is not None:
                self.before_page(number)
            rows = [r for r in self.records.values() if self._matches(r, conditions)]
            rows.sort(key=lambda r: tuple(_sortable(r.get(f), f) for f in order))
            if self.shuffle is not None:
                self.shuffle.shuffle(rows)
            start = (number - 1) * self.page_size
            page = [dict(r) for r in rows[start : start + self.page_size]]
            self.calls += 1
            digest = page_digest(page) if self.digests else None
            yield MemoryPage(self._as_sent(page, source), number, digest=digest)
            if len(page) < self.page_size:
                return

    def _as_sent(self, page: list[dict[str, Any]], source: SourceConfig) -> Sequence[Record]:
        """The rows as the client hands them over: read as received
        (:class:`~watcher.gainsight.rows.RawRows`) from the reply orjson writes of them,
        or as they are when JSON cannot carry them (or ``raw=False``)."""
        if not (self.raw and page):
            return page
        try:
            content = orjson.dumps({"result": True, "data": {"records": page}})
        except (TypeError, ValueError):
            return page
        read = read_page(content, source.key, source.modified_field)
        return page if read is None else read[0]

    async def fetch_by_keys(
        self, source: SourceConfig, keys: Sequence[str], *, priority: Priority = Priority.HIGH
    ) -> list[dict[str, Any]]:
        self.calls += max(1, -(-len(keys) // self.page_size))
        return [dict(self.records[k]) for k in keys if k in self.records]

    async def deleted_since(
        self, source: SourceConfig, since: datetime, *, priority: Priority = Priority.HIGH
    ) -> list[MemoryDeleted]:
        self.calls += 1
        return [d for d in self.deleted if d.deleted_at is None or d.deleted_at > since]


def matches(value: Any, cond: Condition) -> bool:
    """Whether a field's ``value`` satisfies ``cond``, as a tenant would filter.

    Equality and lists (``EQ``, ``NE``, ``IN``, ``NOT_IN``) compare as text; order
    (``GT``, ``GTE``, ``LT``, ``LTE``, ``BTW``) as instants when the bound is a date,
    as numbers when both sides are numbers, else as text (keys); ``BTW`` includes both
    ends, and a bound that is a bare day (``2026-11-23``) covers all of that day;
    ``INCLUDES`` is a multi-select value (a list, or text joined by ``;``) holding any
    of the values; ``IS_NULL`` is ``null`` or empty text.
    """
    if cond.literal is not None:
        raise ValueError(
            f"condition on {cond.field!r}: a Cockpit literal ({cond.literal!r}) names a "
            "moment only the tenant knows; give the values instead"
        )
    op, values = cond.operator, cond.values
    if op == "IS_NULL":
        return value is None or value == ""
    if op == "IS_NOT_NULL":
        return not (value is None or value == "")
    if op in ("EQ", "NE", "IN", "NOT_IN"):
        hit = value is not None and str(value) in {str(v) for v in values}
        return hit if op in ("EQ", "IN") else not hit
    if op == "INCLUDES":
        held = value if isinstance(value, list) else str(value or "").split(";")
        return bool({str(v) for v in held} & {str(v) for v in values})
    if op in ("CONTAINS", "STARTS_WITH", "ENDS_WITH"):
        if value is None:
            return False
        text, part = str(value), str(values[0])
        return (
            part in text
            if op == "CONTAINS"
            else text.startswith(part)
            if op == "STARTS_WITH"
            else text.endswith(part)
        )
    if op == "BTW":
        low, high = values[0], values[1]
        return _order(value, low, cond.field, "GTE") and _order(value, high, cond.field, "LTE")
    return _order(value, values[0], cond.field, op)


def _order(value: Any, bound: Any, field: str, op: str) -> bool:
    """``value <op> bound`` for ``GT``/``GTE``/``LT``/``LTE``: see :func:`matches`."""
    if value is None:
        return False
    bound_text = str(bound)
    when_bound = parse_iso(bound_text)
    pair: tuple[Any, Any]
    if when_bound is not None:
        text = normalize_date(value, field)
        when = parse_iso(text) if isinstance(text, str) else None
        if when is None:
            return False
        if len(bound_text) == _DAY_LEN:  # a bare day: compare whole days
            pair = (when.date(), when_bound.date())
        else:
            pair = (when, when_bound)
    elif _number(value) and _number(bound):
        pair = (value, bound)
    else:
        pair = (str(value), bound_text)
    return bool(_ORDER[op](*pair))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_DAY_LEN = len("2026-11-23")
_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "GT": operator.gt,
    "GTE": operator.ge,
    "LT": operator.lt,
    "LTE": operator.le,
}


def _sortable(value: Any, field: str) -> str:
    if value is None:
        return ""
    normalized = normalize_date(value, field)
    if isinstance(normalized, str):
        return normalized
    if isinstance(normalized, datetime):
        return format_utc(normalized)
    return f"{normalized}"
