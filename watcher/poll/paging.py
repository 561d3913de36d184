"""Reading pages: one page read ahead, and key ranges for sources without a stable order."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Sequence

from watcher.config import SourceConfig
from watcher.gainsight.budget import Priority
from watcher.gainsight.query import Condition
from watcher.poll.source import PageLike, RecordSource

RANGE_SPLIT = 4  # parts a full key range is split into


async def read_ahead(pages: AsyncIterator[PageLike], steps: int = 20) -> AsyncIterator[PageLike]:
    """Yield ``pages`` while the next one is already being fetched.

    Comparing a page is CPU work with no await in it; the request for the next
    page is started first (a few loop steps let it reach the socket), so Gainsight
    prepares page n+1 while page n is compared. Order and error behaviour are
    those of ``pages``; at most one page is read ahead.
    """
    pending: asyncio.Future[PageLike | None] = asyncio.ensure_future(anext(pages, None))
    try:
        while True:
            page = await pending
            if page is None:
                return
            pending = asyncio.ensure_future(anext(pages, None))
            for _ in range(steps):
                if pending.done():
                    break
                await asyncio.sleep(0)
            yield page
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        closer = getattr(pages, "aclose", None)
        if closer is not None:
            await closer()


async def range_pages(
    client: RecordSource,
    source: SourceConfig,
    *,
    base: Sequence[Condition] = (),
    priority: Priority = Priority.LOW,
    probe: Callable[[int], None] | None = None,
) -> AsyncIterator[PageLike]:
    """Every record of ``source`` matching ``base``, one complete single-page range at a time.

    For page-numbered routes whose pages may come in a new order each request: a
    key range the reader answers in one page (it asks for no second page, or the
    second is empty) was read completely; a longer one is split at the quantiles
    of the keys its first page returned (``key GTE lo AND key LT hi``) and each
    part is read the same way. Whether a page was the last is the reader's call,
    so a server that caps pages below the size asked for is not mistaken for a
    complete range. ``probe(calls)`` is told of each first page that was split
    instead of yielded.
    """
    ranges: list[tuple[str | None, str | None]] = [(None, None)]
    while ranges:
        lo, hi = ranges.pop()
        conditions: list[Condition] = list(base)
        if lo is not None:
            conditions.append(Condition(source.key, "GTE", (lo,)))
        if hi is not None:
            conditions.append(Condition(source.key, "LT", (hi,)))
        pages = client.iter_pages(source, conditions=conditions, priority=priority)
        try:
            first = await anext(pages, None)
            second = await anext(pages, None) if first is not None and first.records else None
        finally:
            closer = getattr(pages, "aclose", None)
            if closer is not None:
                await closer()
        if first is None:
            continue
        if second is None or not second.records:
            yield first
            continue
        keys = sorted({str(r.get(source.key)) for r in first.records})
        bounds = sorted({keys[len(keys) * i // RANGE_SPLIT] for i in range(1, RANGE_SPLIT)} - {lo})
        if not bounds:  # cannot split further: page through this range as it comes
            async for page in client.iter_pages(source, conditions=conditions, priority=priority):
                yield page
            continue
        if probe is not None:
            probe(first.calls + second.calls)
        edges: list[str | None] = [lo, *bounds, hi]
        ranges.extend(itertools.pairwise(edges))
