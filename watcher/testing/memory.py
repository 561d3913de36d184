"""An in-memory tenant for tests and benchmarks: :class:`MemorySource` satisfies the poll
engine's :class:`~watcher.poll.source.RecordSource` with the Gainsight client's paging
semantics: offset pages ordered by key (or ``order_by``), ``GTE``/``LT`` on a date
field or the key, ``IN`` on any field.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watcher.config import SourceConfig
from watcher.dates import format_utc, normalize_date, parse_iso
from watcher.gainsight.budget import Priority
from watcher.gainsight.query import Condition, Direction


@dataclass(frozen=True)
class MemoryPage:
    records: list[dict[str, Any]]
    number: int
    calls: int = 1


@dataclass(frozen=True)
class MemoryDeleted:
    key: str
    deleted_at: datetime | None


class MemorySource:
    """An in-memory tenant: ``records`` (key -> record) read with offset paging.

    ``before_page(number)`` runs before each page is cut, so a test can mutate
    ``records`` between page requests exactly as a live tenant would change.
    ``shuffle`` gives each page request a new row order, as Cockpit lists may.
    """

    def __init__(
        self,
        records: dict[str, dict[str, Any]] | None = None,
        *,
        page_size: int = 100,
        before_page: Callable[[int], None] | None = None,
        deleted: list[MemoryDeleted] | None = None,
        shuffle: random.Random | None = None,
    ) -> None:
        self.records: dict[str, dict[str, Any]] = records if records is not None else {}
        self.page_size = page_size
        self.before_page = before_page
        self.deleted = deleted if deleted is not None else []
        self.calls = 0
        self.shuffle = shuffle  # each page request sees a new order (Cockpit lists may)

    def _matches(self, record: Mapping[str, Any], conditions: Sequence[Condition]) -> bool:
        for cond in conditions:
            value = record.get(cond.field)
            if cond.operator == "IN":
                if str(value) not in {str(v) for v in cond.values}:
                    return False
            elif cond.operator in ("GTE", "LT"):
                if not _compare(value, cond):
                    return False
            else:
                raise NotImplementedError(f"MemorySource cannot filter with {cond.operator}")
        return True

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
            yield MemoryPage(page, number)
            if len(page) < self.page_size:
                return

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


def _compare(value: Any, cond: Condition) -> bool:
    """``GTE`` / ``LT``: as instants when the bound is a date, else as text (keys)."""
    if value is None:
        return False
    bound_text = str(cond.values[0])
    bound = parse_iso(bound_text)
    if bound is not None:
        text = normalize_date(value, cond.field)
        when = parse_iso(text) if isinstance(text, str) else None
        if when is None:
            return False
        return when >= bound if cond.operator == "GTE" else when < bound
    return str(value) >= bound_text if cond.operator == "GTE" else str(value) < bound_text


def _sortable(value: Any, field: str) -> str:
    if value is None:
        return ""
    normalized = normalize_date(value, field)
    if isinstance(normalized, str):
        return normalized
    if isinstance(normalized, datetime):
        return format_utc(normalized)
    return f"{normalized}"
