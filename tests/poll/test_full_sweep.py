"""Full sweeps: baseline, exact changes, no false deletes, mass-delete hold, dry run."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.poll.helpers import Harness, company, source_config, tenant
from watcher.errors import PollError, TransientError
from watcher.poll import MIN_HELD_DELETES
from watcher.testing.memory import MemoryPage, MemorySource


async def test_first_sweep_is_a_silent_baseline(tmp_path: Path) -> None:
    """baseline = "silent": every record is stored, no event is emitted."""
    h = Harness(tmp_path / "w.db", tenant(25))
    result = await h.poller.poll(source_config())
    assert result.outcome == "ok"
    assert result.baseline
    assert (result.pages, result.records, result.created) == (3, 25, 25)
    assert h.events() == []
    assert h.store.count_snapshots("companies") == 25
    state = h.store.state("companies")
    assert state.baseline_at is not None
    assert state.watermark == "2026-11-23T10:00:00.000Z"
    (row,) = h.store.polls("companies")
    assert (row["mode"], row["trigger"], row["outcome"], row["pages"], row["records"]) == (
        "full", "manual", "ok", 3, 25,
    )  # fmt: skip


async def test_baseline_emit_sends_created_events(tmp_path: Path) -> None:
    """baseline = "emit": the first sweep emits one created event per record."""
    h = Harness(tmp_path / "w.db", tenant(5))
    await h.poller.poll(source_config(baseline="emit"))
    assert [c for c, _ in h.changes()] == ["created"] * 5


async def test_changes_after_baseline_are_exact(tmp_path: Path) -> None:
    """Create, update (field old/new) and delete each give exactly one event."""
    h = Harness(tmp_path / "w.db", tenant(25))
    src = source_config()
    await h.poller.poll(src)
    recs = h.feed.records
    recs["1P02000003"]["Arr"] = 1.5
    recs["1P02000003"]["ModifiedDate"] = "2026-11-23T11:00:00.000Z"
    del recs["1P02000007"]
    new = company(99)
    recs[new["Gsid"]] = new
    recs["1P02000004"]["ModifiedDate"] = "2026-11-23T12:00:00.000Z"  # ignored field only
    recs["1P02000005"]["Arr"] = 5000  # int vs the stored 5000.0: not a change
    result = await h.poller.poll(src)
    assert sorted(h.changes()) == [
        ("created", "1P02000099"),
        ("deleted", "1P02000007"),
        ("updated", "1P02000003"),
    ]
    (upd,) = [e for e in h.events() if e["data"]["change"] == "updated"]
    assert upd["data"]["changes"] == {"Arr": {"old": 3000, "new": 1.5}}
    assert upd["type"] == "gainsight.company.updated"
    assert upd["source"] == "gainsight://acme.gainsightcloud.com/companies"
    assert upd["data"]["poll"] == {"id": result.poll_id, "mode": "full"}
    (dele,) = [e for e in h.events() if e["data"]["change"] == "deleted"]
    assert dele["data"]["after"] is None
    assert dele["data"]["before"]["Gsid"] == "1P02000007"
    assert [e["sequence"] for e in h.events()] == [1, 2, 3]
    snap = dict(h.store.iter_snapshots("companies"))
    assert snap["1P02000004"]["ModifiedDate"] == "2026-11-23T12:00:00.000Z"  # touched silently
    assert result.touched == 1
    again = await h.poller.poll(src)
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    assert len(h.events()) == 3


async def test_rows_skipped_by_offset_paging_are_not_deleted(tmp_path: Path) -> None:
    """A delete between page requests shifts offsets; the skipped row is re-read by key."""
    feed = tenant(30)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)

    def mutate(number: int) -> None:
        if number == 2:  # after page 1 was read, delete a row on it: row 10 moves to page 1
            feed.records.pop("1P02000001", None)

    feed.before_page = mutate
    result = await h.poller.poll(src)
    assert result.missing == 1  # row 10, skipped: it moved to page 1 after page 1 was read
    assert result.reappeared == 1
    assert h.changes() == []  # no false delete
    feed.before_page = None
    await h.poller.poll(src)  # the next sweep sees the real delete
    assert h.changes() == [("deleted", "1P02000001")]


async def test_mass_delete_is_held_then_applied_with_allow(tmp_path: Path) -> None:
    """Over max_delete_fraction: nothing deleted, one delete_held event, --allow applies."""
    feed = tenant(40)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config(max_delete_fraction=0.2)
    await h.poller.poll(src)
    for i in range(20):
        feed.records.pop(f"1P02{i:06d}")
    held = await h.poller.poll(src)
    assert held.outcome == "held"
    assert held.held == 20
    assert h.store.count_snapshots("companies") == 40
    (ev,) = h.events()
    assert ev["type"] == "gainsight.watcher.delete_held"
    assert ev["data"]["held"] == 20
    assert h.store.state("companies").held_count == 20
    again = await h.poller.poll(src)
    assert again.outcome == "held"
    assert len(h.events()) == 1  # one event per hold, not per sweep
    applied = await h.poller.poll(src, allow_mass_delete=True)
    assert applied.outcome == "ok"
    assert applied.deleted == 20
    assert [c for c, _ in h.changes()] == ["delete_held"] + ["deleted"] * 20
    assert h.store.state("companies").held_at is None


async def test_small_deletes_are_never_held(tmp_path: Path) -> None:
    """Fewer than MIN_HELD_DELETES deletes apply even above the fraction (tiny sources)."""
    feed = tenant(4)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    feed.records.pop("1P02000000")
    assert MIN_HELD_DELETES > 1
    result = await h.poller.poll(src)
    assert result.outcome == "ok"
    assert h.changes() == [("deleted", "1P02000000")]


async def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    """--dry-run counts what would change but commits no snapshot, event or poll row."""
    feed = tenant(12)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    feed.records["1P02000002"]["Stage"] = "Will Churn"
    feed.records.pop("1P02000003")
    result = await h.poller.poll(src, dry_run=True)
    assert result.outcome == "dry-run"
    assert (result.updated, result.deleted) == (1, 1)  # what a real sweep would do
    assert h.events() == []
    assert h.store.count_snapshots("companies") == 12
    assert dict(h.store.iter_snapshots("companies"))["1P02000002"]["Stage"] == "Launched"
    assert len(h.store.polls("companies")) == 1


async def test_a_failing_read_is_recorded_and_raised_as_poll_error(tmp_path: Path) -> None:
    """A SourceError fails the poll: history says failed, the error is a PollError."""
    feed = tenant(30)

    def fail(number: int) -> None:
        if number == 2:
            raise TransientError("HTTP 503 after retries")

    feed.before_page = fail
    h = Harness(tmp_path / "w.db", feed)
    with pytest.raises(PollError, match="503"):
        await h.poller.poll(source_config())
    (row,) = h.store.polls("companies")
    assert row["outcome"] == "failed"
    assert "503" in row["error"]
    assert h.store.count_snapshots("companies") == 10  # page 1 committed


async def test_incremental_before_baseline_runs_a_full_sweep(tmp_path: Path) -> None:
    h = Harness(tmp_path / "w.db", MemorySource({}, page_size=5))
    result = await h.poller.poll(source_config(), "incremental")
    assert result.mode == "full"
    assert h.store.state("companies").baseline_at is not None


async def test_concurrent_sweeps_of_two_sources_share_one_store(tmp_path: Path) -> None:
    """Seen-sets are per source: interleaved sweeps on one connection find no false missing."""
    feed = tenant(50)
    h = Harness(tmp_path / "w.db", feed)
    a, b = source_config(name="a"), source_config(name="b")
    await asyncio.gather(h.poller.poll(a), h.poller.poll(b))
    feed.records.pop("1P02000010")
    ra, rb = await asyncio.gather(h.poller.poll(a), h.poller.poll(b))
    assert (ra.missing, rb.missing) == (1, 1)
    assert (ra.deleted, rb.deleted) == (1, 1)
    assert sorted(h.changes()) == [("deleted", "1P02000010")] * 2


class ShortReplies(MemorySource):
    """Replies sometimes hold only the first half of their rows (valid JSON, short)."""

    def __init__(self, *args: Any, rate: float, seed: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rng = random.Random(seed)
        self.rate = rate

    def _cut(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(rows[: len(rows) // 2] if self.rng.random() < self.rate else rows)

    async def iter_pages(self, source: Any, **kwargs: Any) -> AsyncIterator[MemoryPage]:
        async for page in super().iter_pages(source, **kwargs):
            yield MemoryPage(self._cut(page.records), page.number)

    async def fetch_by_keys(self, source: Any, keys: Any, **kwargs: Any) -> list[dict[str, Any]]:
        rows = await super().fetch_by_keys(source, keys, **kwargs)
        return self._cut(sorted(rows, key=lambda r: str(r["Gsid"])))


@pytest.mark.parametrize("seed", range(6))
async def test_short_replies_never_cause_a_false_delete(tmp_path: Path, seed: int) -> None:
    """Sweeps that end early and by-key reads that drop rows: only real deletes emit."""
    records = {r["Gsid"]: r for r in (company(i) for i in range(120))}
    feed = ShortReplies(records, page_size=10, rate=0.3, seed=seed)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config(max_delete_fraction=1.0)
    feed.rate = 0.0
    await h.poller.poll(src)
    feed.rate = 0.3
    gone = {f"1P02{i:06d}" for i in range(3, 120, 17)}
    for key in gone:
        feed.records.pop(key)
    for _ in range(5):
        await h.poller.poll(src)
    feed.rate = 0.0
    await h.poller.poll(src)
    assert sorted(h.changes()) == sorted(("deleted", k) for k in gone)
