"""Gainsight's delete feeds, read through anything that pages like the client
(:class:`PageReader`; the :class:`~watcher.gainsight.client.GainsightClient` is one).

MDA objects (companies, goals, any object) read ``record_delete_log`` filtered on
``DeletedOn`` (ISO-8601 with ``+00:00``), reaching :data:`ZONE_SLACK` further back
than asked so that a server reading the value in another zone still covers the
window. CTAs read the Cockpit deleted list *whole*, without a filter: nothing
documents that a delete touches ``ModifiedDate``, and the list holds only the
15 days Gainsight retains, so every delete within retention is seen on every read
(the caller keeps only keys it still stores). Past retention, full sweeps find
deletes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from watcher.config import SourceConfig
from watcher.dates import normalize_date, parse_iso
from watcher.errors import ApiError, MalformedResponseError
from watcher.gainsight.budget import Priority
from watcher.gainsight.query import (
    CTA_DELETED_PATH,
    CTA_LIST_PATH,
    DELETE_LOG_PATH,
    Condition,
    Direction,
    iso_filter_value,
    mda_object_of,
)
from watcher.gainsight.routes import path_of

ZONE_SLACK = timedelta(hours=14)  # the widest distance of any zone from UTC


class PageRows(Protocol):
    """One page of a read: its rows."""

    @property
    def records(self) -> Sequence[dict[str, Any]]: ...


class PageReader(Protocol):
    """What reading a delete feed needs of the client (so this module does not
    import the client that imports it)."""

    def iter_pages(
        self,
        source: SourceConfig,
        *,
        conditions: Sequence[Condition] = (),
        expression: str | None = None,
        order_by: Mapping[str, Direction] | None = None,
        priority: Priority = Priority.LOW,
        select: Sequence[str] | None = None,
        path: str | None = None,
        max_rows: int | None = None,
    ) -> AsyncIterator[PageRows]: ...


@dataclass(frozen=True)
class DeletedRecord:
    """A hard delete seen in Gainsight's delete feed."""

    key: str
    deleted_at: datetime | None  # aware UTC; None when the feed gave no usable date


async def deleted_since(
    client: PageReader,
    source: SourceConfig,
    since: datetime,
    *,
    priority: Priority = Priority.HIGH,
) -> list[DeletedRecord]:
    """Hard deletes of ``source``'s records after ``since`` (retained 15 days).

    MDA objects read ``record_delete_log``; CTAs (either api) read the Cockpit
    deleted list. Sources without a delete feed (a ``path`` override that is not
    the query route) raise :class:`ApiError`: rely on full sweeps for them.
    """
    path = path_of(source)
    if source.kind == "cta" and (source.path is None or path == CTA_LIST_PATH):
        return await _deleted_ctas(client, source, since, priority)
    obj = mda_object_of(path)
    if obj is not None:
        return await _delete_log(client, source, obj, since, priority)
    raise ApiError(
        f"source {source.name!r}: Gainsight has no delete feed for {path}; remove "
        "delete_log from this source (full sweeps still detect deletes)"
    )


def delete_log_read(
    source: SourceConfig, obj: str, since: datetime
) -> tuple[SourceConfig, tuple[Condition, ...]]:
    """The ``record_delete_log`` pseudo-source and filter that read ``obj``'s deletes."""
    log_source = source.model_copy(
        update={
            "kind": "object",
            "object": "record_delete_log",
            "path": DELETE_LOG_PATH,
            "paging": "offset",
            "api": None,
            "page_size": None,
            "key": "RecordId",
            "modified_field": "DeletedOn",
            "select": ("RecordId", "DeletedOn", "ObjectName"),
            "ignore_fields": (),
        }
    )
    conditions = (
        Condition("DeletedOn", "GTE", (iso_filter_value(since - ZONE_SLACK),)),
        Condition("ObjectName", "EQ", (obj,)),
    )
    return log_source, conditions


def cta_deleted_listing(source: SourceConfig) -> SourceConfig:
    """The Cockpit deleted list read with the Cockpit body, whichever api ``source`` uses."""
    return source.model_copy(
        update={"api": "cockpit", "path": None, "paging": None, "page_size": None}
    )


async def _delete_log(
    client: PageReader, source: SourceConfig, obj: str, since: datetime, priority: Priority
) -> list[DeletedRecord]:
    log_source, conditions = delete_log_read(source, obj, since)
    out: list[DeletedRecord] = []
    try:
        async for page in client.iter_pages(
            log_source,
            conditions=conditions,
            order_by={"DeletedOn": "asc"},
            priority=priority,
        ):
            for row in page.records:
                name = row.get("ObjectName")
                if isinstance(name, str) and name.lower() != obj.lower():
                    continue
                out.append(_deleted(row, "RecordId", "DeletedOn", path=DELETE_LOG_PATH))
    except ApiError as exc:
        if exc.error_code == "OBJECT_NOT_FOUND":
            raise ApiError(
                f"source {source.name!r}: this tenant has no record_delete_log object "
                f"(OBJECT_NOT_FOUND, request id {exc.request_id or 'none'}); remove "
                "delete_log from this source (full sweeps still detect deletes)",
                error_code=exc.error_code,
                request_id=exc.request_id,
                status=exc.status,
            ) from exc
        raise
    return out


async def _deleted_ctas(
    client: PageReader, source: SourceConfig, since: datetime, priority: Priority
) -> list[DeletedRecord]:
    """Every CTA on the deleted list (its 15-day retention), deduplicated by key.

    ``since`` is not sent: a filter on ``ModifiedDate`` would miss a CTA deleted
    without being modified. The Cockpit body is used whichever api the source reads.
    """
    del since
    listing = cta_deleted_listing(source)
    seen: dict[str, DeletedRecord] = {}
    async for page in client.iter_pages(
        listing,
        select=(source.key, source.modified_field),
        path=CTA_DELETED_PATH,
        priority=priority,
    ):
        for row in page.records:
            item = _deleted(row, source.key, source.modified_field, path=CTA_DELETED_PATH)
            seen.setdefault(item.key, item)
    return list(seen.values())


def _deleted(
    row: Mapping[str, Any], key_field: str, date_field: str, *, path: str
) -> DeletedRecord:
    key = row.get(key_field)
    if not isinstance(key, str) or not key:
        raise MalformedResponseError(f"{path}: a deleted row has no {key_field}")
    raw = normalize_date(row.get(date_field), date_field)
    when = parse_iso(raw) if isinstance(raw, str) else None
    return DeletedRecord(key=key, deleted_at=when)
