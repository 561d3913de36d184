"""The async Gainsight client: paging, look-ups by key, delete feeds, metadata reads.

One call (a budget slot, bounded retries, error translation) is
:class:`~watcher.gainsight.calls.ApiCaller`; the client adds the reads on top. I/O is
the injected :class:`httpx.AsyncClient`.

Paging learns the page size the server really serves: a page shorter than asked
ends a read only once the server is known to honour the size asked for (it once
answered a full page) or a cap has been learned; otherwise the next page is
requested, and a non-empty answer teaches the cap (see :meth:`iter_pages`).

Nothing from httpx, json or dict access escapes: every failure is a
:class:`~watcher.errors.SourceError` subclass raised ``from`` the original.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watcher.config import SourceConfig
from watcher.errors import (
    ApiError,
    SourceError,
)
from watcher.gainsight import deletes
from watcher.gainsight.advice import advice_for
from watcher.gainsight.budget import Priority
from watcher.gainsight.calls import (
    AUTH_CODES,
    KEY_SETTING,
    WINDOW_S,
    ApiCaller,
    ClientStats,
)
from watcher.gainsight.deletes import DeletedRecord
from watcher.gainsight.query import (
    MDA_QUERY_PREFIX,
    Condition,
    Direction,
    key_lookup,
    page_size_of,
    query_body,
    select_of,
    style_of,
)
from watcher.gainsight.routes import key_batch_of, path_of
from watcher.logging import get_logger

__all__ = [
    "AUTH_CODES",
    "KEY_SETTING",
    "WINDOW_S",
    "ClientStats",
    "GainsightClient",
    "Page",
    "PingResult",
]

_log = get_logger("watcher.gainsight")


@dataclass(frozen=True)
class Page:
    """One page of rows as received (the poll engine normalizes them). ``number`` is
    1-based within the read; ``calls`` is how many HTTP requests the page cost (retries
    included)."""

    records: Sequence[dict[str, Any]]  # a list, or RawRows (parsed on demand)
    number: int
    calls: int
    request_id: str | None = None
    digest: int | None = None  # of the reply's bytes (envelope.reply_digest)


@dataclass(frozen=True)
class PingResult:
    request_id: str | None
    status: int


class GainsightClient(ApiCaller):
    """Reads Gainsight through one ``httpx.AsyncClient`` and one shared budget."""

    def page_cap(self, path: str) -> int | None:
        """Rows per page the server was seen to serve on ``path`` (``None``: not learned)."""
        return self._caps.get(path)

    async def iter_pages(
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
    ) -> AsyncIterator[Page]:
        """Yield every page of ``source`` matching ``conditions``.

        MDA paging (``limit``/``offset``) defaults to ``orderBy {key: asc}`` so
        offsets stay stable; Cockpit paging sends no order (none is documented).

        A read ends on an empty page, or on a page shorter than the page size the
        server is known to serve on this route. A server may cap a page below the
        size asked for (1,000 rows for ``limit`` 5000): until the route has answered
        one full page, a short page is followed by one more request; a non-empty
        answer teaches the cap, which is kept for the route. ``offset`` advances by
        the rows received, and Cockpit ``pageSize`` becomes the learned cap.
        ``max_rows`` (a key look-up knows how many rows can match) ends the read
        once that many rows came.
        """
        try:
            async for page in self._pages(
                source,
                conditions=conditions,
                expression=expression,
                order_by=order_by,
                priority=priority,
                select=select,
                path=path,
                max_rows=max_rows,
            ):
                yield page
        except ApiError as exc:
            raise self._explain(source, exc) from exc

    async def _pages(
        self,
        source: SourceConfig,
        *,
        conditions: Sequence[Condition],
        expression: str | None,
        order_by: Mapping[str, Direction] | None,
        priority: Priority,
        select: Sequence[str] | None,
        path: str | None,
        max_rows: int | None,
    ) -> AsyncIterator[Page]:
        style = style_of(source)
        asked = page_size_of(source)
        target = path or path_of(source)
        fields = list(select) if select is not None else select_of(source)
        if order_by is None and style == "mda":
            order_by = {source.key: "asc"}
        number = offset = 0
        probe: int | None = None  # the short page before this request, cap not yet known
        previous: Sequence[dict[str, Any]] | None = None
        while True:
            cap = self._caps.get(target)
            size = probe or (min(asked, cap) if cap else asked)
            body = query_body(
                style=style,
                select=fields,
                page_size=size,
                page_index=offset // size,
                conditions=conditions,
                expression=expression,
                order_by=order_by,
            )
            if style == "mda":
                body["offset"] = offset
            reply, calls = await self._call(
                target, body, priority=priority, columns=(source.key, source.modified_field)
            )
            records = reply.records  # as received: the poll engine normalizes them
            if previous is not None and records and records == previous:
                if probe is not None:
                    return  # the short page again (offset ignored, or rows moved): the end
                raise ApiError(
                    f"{target}: page {number + 1} repeats page {number}; the server ignores "
                    f"{'offset' if style == 'mda' else 'pageNumber'} (check the source's "
                    "paging setting)",
                    request_id=reply.request_id,
                )
            number += 1
            yield Page(records, number, calls, reply.request_id, reply.digest)
            if not records:
                return
            if probe is not None:  # a short page was followed by more rows: the server's cap
                self._caps[target] = probe
                _log.info("gainsight.page_cap", path=target, asked=asked, served=probe)
                probe = None
            n = len(records)
            if max_rows is not None and offset + n >= max_rows:
                return
            served = self._served.get((target, asked), 0)
            if size == asked and n > served:
                self._served[(target, asked)] = n
            if n >= size:
                if size == asked:
                    self._honoured.add((target, asked))
            elif (
                self._caps.get(target) is not None
                or (target, asked) in self._honoured
                or (size == asked and n < served)
            ):
                # shorter than what the server is known to serve (a cap, or a page it
                # was seen to carry on this route): the end. A fast lane's read costs
                # one call once a sweep has read a page longer than its changes.
                return
            else:
                probe = n
                if style == "cockpit" and offset % n:
                    return  # page numbers cannot address the rows after this page
            offset += n
            previous = records

    def _explain(self, source: SourceConfig, exc: ApiError) -> ApiError:
        """``exc`` with the source named and the setting an admin can change."""
        advice = advice_for(source, exc)
        if advice is None or str(exc).startswith(f"source {source.name!r}"):
            return exc
        return ApiError(
            f"source {source.name!r}: {exc}; {advice}",
            error_code=exc.error_code,
            request_id=exc.request_id,
            status=exc.status,
            desc=exc.desc,
        )

    async def read_all(
        self,
        source: SourceConfig,
        *,
        conditions: Sequence[Condition] = (),
        priority: Priority = Priority.LOW,
    ) -> list[dict[str, Any]]:
        """Every record of ``iter_pages`` in one list (tests, small reads)."""
        out: list[dict[str, Any]] = []
        async for page in self.iter_pages(source, conditions=conditions, priority=priority):
            out.extend(page.records)
        return out

    async def fetch_by_keys(
        self,
        source: SourceConfig,
        keys: Sequence[str],
        *,
        priority: Priority = Priority.HIGH,
        batch_size: int | None = None,
    ) -> list[dict[str, Any]]:
        """Records whose key is in ``keys`` (``key IN [...]`` on the query route, ``EQ``
        terms joined with ``OR`` on the Cockpit list), batched."""
        unique = list(dict.fromkeys(k for k in keys if k))
        limit = key_batch_of(source)
        size = max(1, min(batch_size or limit, limit))
        found: dict[Any, dict[str, Any]] = {}
        for start in range(0, len(unique), size):
            batch = unique[start : start + size]
            conditions, expression = key_lookup(source, batch)
            async for page in self.iter_pages(
                source,
                conditions=conditions,
                expression=expression,
                priority=priority,
                max_rows=len(batch),
            ):
                for record in page.records:
                    found[record.get(source.key)] = record
        return [found[k] for k in unique if k in found]

    async def deleted_since(
        self, source: SourceConfig, since: datetime, *, priority: Priority = Priority.HIGH
    ) -> list[DeletedRecord]:
        """Hard deletes of ``source``'s records after ``since`` (see :mod:`.deletes`)."""
        return await deletes.deleted_since(self, source, since, priority=priority)

    async def ping(self) -> PingResult:
        """One cheap call (``select Gsid limit 1`` on Company) to prove reach and key."""
        body = {"select": ["Gsid"], "limit": 1, "offset": 0}
        reply, _ = await self._call(MDA_QUERY_PREFIX + "Company", body, priority=Priority.HIGH)
        return PingResult(request_id=reply.request_id, status=200)

    async def get_meta(self, path: str) -> list[dict[str, Any]]:
        """A metadata read (``GET /v1/meta/services/...``): its ``data`` rows."""
        reply, _ = await self._call(path, None, priority=Priority.HIGH)
        return list(reply.records)


__all__ = [
    "ClientStats",
    "DeletedRecord",
    "GainsightClient",
    "Page",
    "PingResult",
    "SourceError",
]
