"""Reading pages: key ranges for unordered sources, one page read ahead."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest

from tests.poll.helpers import Harness, source_config, tenant
from watcher.poll.paging import read_ahead
from watcher.testing.memory import MemoryPage

CTAS = {
    "name": "ctas",
    "kind": "goal",
    "path": "/v1/csgoal/external/list",
    "paging": "page",
    "select": ("Gsid", "Name", "Arr"),
    "page_size": 10,
}


async def test_unordered_source_is_read_completely_by_key_ranges(tmp_path: Path) -> None:
    """A page-numbered path override, each page in a new order: plain paging misses rows;
    key ranges read every one."""
    feed = tenant(95, page_size=10)
    feed.shuffle = random.Random(3)
    src = source_config(**CTAS)
    plain = {r["Gsid"] async for p in feed.iter_pages(src) for r in p.records}
    assert len(plain) < 95  # what a naive sweep would baseline

    splits: list[str] = []
    h = Harness(tmp_path / "w.db", feed, hook=splits.append)
    result = await h.poller.poll(src)
    assert h.store.count_snapshots("ctas") == 95
    assert "range_split" in splits
    assert result.api_calls > result.pages  # probe pages count as calls
    feed.records.pop("1P02000050")
    await h.poller.poll(src)
    assert h.changes() == [("deleted", "1P02000050")]  # and nothing was falsely created


async def _pages(n: int, fail_at: int | None = None) -> AsyncIterator[MemoryPage]:
    for i in range(1, n + 1):
        if i == fail_at:
            raise RuntimeError("page failed")
        yield MemoryPage([{"Gsid": str(i)}], i)


async def test_read_ahead_keeps_order_and_errors() -> None:
    """Pages come out in order; an error on a later page surfaces when that page is due."""
    got = [p.number async for p in read_ahead(_pages(5))]
    assert got == [1, 2, 3, 4, 5]
    seen: list[int] = []

    async def consume() -> None:
        async for page in read_ahead(_pages(5, fail_at=3)):
            seen.append(page.number)

    with pytest.raises(RuntimeError, match="page failed"):
        await consume()
    assert seen == [1, 2]


async def test_read_ahead_closes_the_source_when_stopped_early() -> None:
    closed: list[bool] = []

    async def pages() -> AsyncIterator[MemoryPage]:
        try:
            for i in range(1, 100):
                yield MemoryPage([], i)
        finally:
            closed.append(True)

    reader = read_ahead(pages())
    assert isinstance(reader, AsyncGenerator)  # closed early below, as the engine does
    async for page in reader:
        if page.number == 2:
            break
    await reader.aclose()
    assert closed == [True]
