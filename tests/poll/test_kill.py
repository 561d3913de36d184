"""Crash safety: a poll killed at any point and run again neither loses nor duplicates."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.poll.helpers import Harness, company, source_config, tenant
from watcher.errors import PollError
from watcher.testing.memory import MemorySource


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the engine catches it."""


EXPECTED = sorted(
    [("updated", f"1P02{i:06d}") for i in (3, 14, 25, 36, 47)]
    + [("created", f"1P02{i:06d}") for i in (100, 101, 102)]
    + [("deleted", f"1P02{i:06d}") for i in (5, 16, 27, 38)]
)


def mutate(feed: MemorySource) -> None:
    for i in (3, 14, 25, 36, 47):
        feed.records[f"1P02{i:06d}"]["Stage"] = "Will Churn"
    for i in (100, 101, 102):
        rec = company(i)
        feed.records[rec["Gsid"]] = rec
    for i in (5, 16, 27, 38):
        feed.records.pop(f"1P02{i:06d}")


@pytest.fixture(scope="module")
def baseline_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store after the silent baseline of 60 records (copied per test)."""
    import asyncio

    path = tmp_path_factory.mktemp("base") / "w.db"
    h = Harness(path, tenant(60))
    asyncio.run(h.poller.poll(source_config()))
    h.store.close()
    return path


def kill_at(point: str, nth: int) -> Any:
    seen = Counter[str]()

    def hook(name: str) -> None:
        seen[name] += 1
        if name == point and seen[name] == nth:
            raise Killed

    return hook


# point -> how many times it occurs in the sweep after mutate(): 6 pages (59 rows), 2 confirm
# batches (4 missing keys, batch 2) and 2 delete batches (batch 2).
POINTS = (
    [("page_fetched", n) for n in range(1, 7)]
    + [("page_committed", n) for n in range(1, 7)]
    + [("confirm_batch", 1), ("confirm_batch", 2), ("delete_batch", 1), ("delete_batch", 2)]
)


@pytest.mark.parametrize(("point", "nth"), POINTS)
async def test_kill_anywhere_then_rerun_gives_each_event_once(
    tmp_path: Path, baseline_db: Path, point: str, nth: int
) -> None:
    """Interrupted between pages, mid-page, during confirmation or deletes: same events."""
    path = tmp_path / "w.db"
    shutil.copy(baseline_db, path)
    feed = tenant(60)
    mutate(feed)
    h = Harness(path, feed, hook=kill_at(point, nth), confirm_batch=2, delete_batch=2)
    with pytest.raises(Killed):
        await h.poller.poll(source_config())
    h.reopen(confirm_batch=2, delete_batch=2)
    result = await h.poller.poll(source_config())
    assert result.outcome == "ok"
    assert sorted(h.changes()) == EXPECTED
    sequences = [e["sequence"] for e in h.events()]
    assert sequences == sorted(set(sequences))
    again = await h.poller.poll(source_config())
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)


async def test_kill_inside_the_commit_rolls_back_the_page(
    tmp_path: Path, baseline_db: Path
) -> None:
    """A crash between inserting an event and committing loses the whole page, then redoes it."""
    path = tmp_path / "w.db"
    shutil.copy(baseline_db, path)
    feed = tenant(60)
    mutate(feed)
    h = Harness(path, feed)
    calls = Counter[str]()

    def crash() -> None:  # runs inside the commit's transaction, per delivery row
        calls["n"] += 1
        if calls["n"] == 3:
            raise Killed

    def route(_event: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [("rule", "sink")]

    h.poller.matcher = route
    h.store.conn.create_function("crash", 0, crash)
    h.store.conn.execute(
        "CREATE TEMP TRIGGER crash AFTER INSERT ON deliveries BEGIN SELECT crash(); END"
    )
    with pytest.raises(PollError, match="user-defined function raised exception"):
        await h.poller.poll(source_config())
    assert calls["n"] == 3
    h.reopen(matcher=route)
    await h.poller.poll(source_config())
    assert sorted(h.changes()) == EXPECTED
    deliveries = h.store.db.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM deliveries")
    assert deliveries.fetchone() == (len(EXPECTED), len(EXPECTED))
