"""Incremental reads and the delete log."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

from tests.poll.helpers import Harness, company, source_config, tenant
from watcher.testing.memory import MemoryDeleted


async def test_incremental_reads_since_watermark_less_overlap(tmp_path: Path) -> None:
    """Changed and new records emit; unchanged re-reads in the overlap emit nothing."""
    feed = tenant(25)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config(incremental="*/2 * * * *", incremental_overlap="10m")
    await h.poller.poll(src)
    assert h.store.state("companies").watermark == "2026-11-23T10:00:00.000Z"
    feed.records["1P02000003"].update(Arr=7.5, ModifiedDate="2026-11-23T11:00:00.000Z")
    feed.records["1P02000005"].update(ModifiedDate="2026-11-23T11:30:00.000Z")
    new = company(99, ModifiedDate="2026-11-23T12:00:00.000Z")
    feed.records[new["Gsid"]] = new
    result = await h.poller.poll(src, "incremental")
    assert result.mode == "incremental"
    assert result.records == 26  # everything at 10:00 is inside the 10-minute overlap
    assert sorted(h.changes()) == [("created", "1P02000099"), ("updated", "1P02000003")]
    assert h.store.state("companies").watermark == "2026-11-23T12:00:00.000Z"
    again = await h.poller.poll(src, "incremental")
    assert again.records == 1  # only the record inside [11:50, ...)
    assert len(h.events()) == 2
    (row,) = [p for p in h.store.polls("companies") if p["id"] == again.poll_id]
    assert row["mode"] == "incremental"


async def test_watermark_advances_with_the_page_it_covers(tmp_path: Path) -> None:
    """A failure after page 1 keeps page 1's watermark and nothing beyond it."""
    feed = tenant(5, page_size=2)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config(incremental="*/2 * * * *", incremental_overlap="0s")
    await h.poller.poll(src)
    for i, hour in ((1, 11), (2, 12), (3, 13)):
        feed.records[f"1P02{i:06d}"].update(Arr=-1, ModifiedDate=f"2026-11-23T{hour}:00:00.000Z")

    class Crash(Exception):
        pass

    calls = {"n": 0}

    def hook(point: str) -> None:
        if point == "page_committed":
            calls["n"] += 1
            if calls["n"] == 2:
                raise Crash

    h.reopen(hook=hook)
    with contextlib.suppress(Crash):
        await h.poller.poll(src, "incremental")
    # pages ordered by (ModifiedDate, Gsid): [0, 4 at 10:00], [1 at 11:00, 2 at 12:00], [3]
    assert h.store.state("companies").watermark == "2026-11-23T12:00:00.000Z"
    h.reopen()
    await h.poller.poll(src, "incremental")
    assert sorted(s for _, s in h.changes()) == ["1P02000001", "1P02000002", "1P02000003"]
    assert h.store.state("companies").watermark == "2026-11-23T13:00:00.000Z"


def test_cockpit_incremental_bound_is_floored_to_the_day(tmp_path: Path) -> None:
    """The Cockpit list filters whole days: the lower bound starts at midnight UTC; CTAs
    on the default query route get no whole-day re-read."""
    h = Harness(tmp_path / "w.db", tenant(0))
    cta = source_config(
        name="ctas", kind="cta", api="cockpit", select=("Gsid", "Name"), page_size=None
    )
    since = h.poller.incremental_since(cta, "2026-11-23T00:05:00.000Z")
    assert since == datetime(2026, 11, 22, tzinfo=UTC)  # 00:05 - 10m is the day before
    query_cta = source_config(name="ctas", kind="cta", select=("Gsid", "Name"))
    assert h.poller.incremental_since(query_cta, "2026-11-23T00:05:00.000Z") == datetime(
        2026, 11, 22, 23, 55, tzinfo=UTC
    )
    company_src = source_config()
    assert h.poller.incremental_since(company_src, "2026-11-23T00:05:00.000Z") == datetime(
        2026, 11, 22, 23, 55, tzinfo=UTC
    )


async def test_delete_log_emits_confirmed_deletes_only(tmp_path: Path) -> None:
    """A logged delete of a stored key that is really gone emits deleted; others nothing."""
    feed = tenant(10)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config(delete_log="*/10 * * * *")
    await h.poller.poll(src)
    h.clock.advance(3600)
    when = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)  # after the baseline sweep (16:00)
    feed.records.pop("1P02000004")
    feed.deleted.extend(
        [
            MemoryDeleted("1P02000004", when),
            MemoryDeleted("1P02000005", when),  # logged but still readable: restored
            MemoryDeleted("UNKNOWN", when),  # never stored: nothing to say
        ]
    )
    result = await h.poller.poll(src, "delete_log")
    assert result.mode == "delete_log"
    assert h.changes() == [("deleted", "1P02000004")]
    assert h.store.state("companies").delete_log_since == "2026-11-23T16:30:00.000Z"
    await h.poller.poll(src, "delete_log")
    assert len(h.events()) == 1
    await h.poller.poll(src)  # the next full sweep agrees: no second delete
    assert len(h.events()) == 1
