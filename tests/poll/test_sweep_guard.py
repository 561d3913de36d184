"""The sweep guard: a full sweep never reports an older state over a newer one the
source's fast lane stored while the sweep ran (deterministic: a gated tenant)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.poll.helpers import Harness, company, source_config
from watcher.config import SourceConfig
from watcher.gainsight.budget import Priority
from watcher.gainsight.query import Condition, Direction
from watcher.testing.memory import MemoryDeleted, MemoryPage, MemorySource

NEWER = "2026-11-23T11:00:00.000Z"


class GatedSource(MemorySource):
    """Holds a full sweep's page 2 after it was read (cut) and before the engine gets it."""

    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        super().__init__(records, page_size=10)
        self.gate = False
        self.page2_read = asyncio.Event()
        self.release = asyncio.Event()
        self.after_fetch: Callable[[], Awaitable[None]] | None = None

    async def fetch_by_keys(
        self, source: SourceConfig, keys: Sequence[str], *, priority: Priority = Priority.HIGH
    ) -> list[dict[str, Any]]:
        found = await super().fetch_by_keys(source, keys, priority=priority)
        if self.after_fetch is not None:
            await self.after_fetch()
        return found

    async def iter_pages(
        self,
        source: SourceConfig,
        *,
        conditions: Sequence[Condition] = (),
        order_by: Mapping[str, Direction] | None = None,
        priority: Priority = Priority.LOW,
    ) -> AsyncIterator[MemoryPage]:
        sweep = not conditions and self.gate
        async for page in super().iter_pages(
            source, conditions=conditions, order_by=order_by, priority=priority
        ):
            if sweep and page.number == 2:
                self.page2_read.set()
                await self.release.wait()
            yield page


async def _sweep_with_fast_lane_between_pages(tmp_path: Path, change: str) -> Harness:
    feed = GatedSource({r["Gsid"]: r for r in (company(i) for i in range(20))})
    h = Harness(tmp_path / "w.db", feed)
    source = source_config()
    await h.poller.poll(source, "full")  # the baseline
    feed.gate = True
    sweep = asyncio.create_task(h.poller.poll(source, "full"))
    await feed.page2_read.wait()  # page 2 is read: it holds the old record 15
    key = company(15)["Gsid"]
    if change == "update":
        feed.records[key] = company(15, Stage="Churned", ModifiedDate=NEWER)
        lane = await h.poller.poll(source, "incremental")
    else:
        del feed.records[key]
        feed.deleted.append(MemoryDeleted(key, None))
        lane = await h.poller.poll(source, "delete_log")
    assert lane.outcome == "ok"
    feed.release.set()
    result = await sweep
    assert result.outcome == "ok"
    assert result.stale == 1
    return h


async def test_sweep_page_older_than_the_fast_lanes_update_is_skipped(tmp_path: Path) -> None:
    h = await _sweep_with_fast_lane_between_pages(tmp_path, "update")
    key = company(15)["Gsid"]
    assert h.changes() == [("updated", key)]  # the fast lane's, and no revert
    stored = h.store.records("companies", [key])[key]
    assert stored["Stage"] == "Churned"
    assert stored["ModifiedDate"] == NEWER


async def test_sweep_page_never_recreates_what_the_fast_lane_deleted(tmp_path: Path) -> None:
    h = await _sweep_with_fast_lane_between_pages(tmp_path, "delete")
    key = company(15)["Gsid"]
    assert h.changes() == [("deleted", key)]
    assert h.store.records("companies", [key]) == {}


async def test_sweep_keeps_a_key_the_fast_lane_wrote_while_it_confirmed(tmp_path: Path) -> None:
    """A key the fast lane created after the sweep's pages is not the sweep's to delete."""
    feed = GatedSource({r["Gsid"]: r for r in (company(i) for i in range(20))})
    h = Harness(tmp_path / "w.db", feed)
    source = source_config()
    await h.poller.poll(source, "full")
    gone = company(3)["Gsid"]
    del feed.records[gone]  # a real delete: the sweep confirms it by key, then deletes
    created = company(99, ModifiedDate=NEWER)

    async def lane() -> None:
        if created["Gsid"] not in feed.records:  # during the sweep's confirmation reads
            feed.records[created["Gsid"]] = created
            await h.poller.poll(source, "incremental")

    feed.after_fetch = lane
    result = await h.poller.poll(source, "full")
    assert result.outcome == "ok"
    assert sorted(h.changes()) == sorted([("created", created["Gsid"]), ("deleted", gone)])
    assert created["Gsid"] in h.store.records("companies", [created["Gsid"]])


async def test_a_full_sweep_is_not_held_back_by_a_stored_date_in_the_future(
    tmp_path: Path,
) -> None:
    """A record stored with ModifiedDate 2031 (a tenant's bad data) and later corrected to
    an earlier date, with a real change: the sweep reports and stores it (nothing else
    wrote it while the sweep ran), and the sweep after that finds nothing."""
    feed = MemorySource({r["Gsid"]: r for r in (company(i) for i in range(20))}, page_size=10)
    key = company(7)["Gsid"]
    feed.records[key] = company(7, ModifiedDate="2031-01-01T00:00:00.000Z")
    h = Harness(tmp_path / "w.db", feed)
    source = source_config()
    await h.poller.poll(source, "full")
    feed.records[key] = company(7, Stage="Churned", ModifiedDate=NEWER)

    fixed = await h.poller.poll(source, "full")
    again = await h.poller.poll(source, "full")

    assert (fixed.updated, fixed.stale) == (1, 0)
    assert h.changes() == [("updated", key)]
    assert h.store.records("companies", [key])[key]["ModifiedDate"] == NEWER
    assert (again.updated, again.stale, again.touched) == (0, 0, 0)
