"""The incremental watermark never passes now (issue 14 #1).

The fake clock stands at 2026-11-23T16:00Z; the tenant's records are modified at
10:00 the same day.
"""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from tests.poll.helpers import Harness, source_config, tenant
from watcher.poll.engine import MAX_CLOCK_SKEW

FUTURE = "2031-06-01T00:00:00.000Z"
INCREMENTAL = {"incremental": "*/2 * * * *", "incremental_overlap": "10m"}


async def test_a_future_modified_date_does_not_freeze_incremental_reads(tmp_path: Path) -> None:
    """One record dated 2031: the watermark stays at most now + MAX_CLOCK_SKEW, the key
    is logged, and a real change elsewhere is found by the next incremental."""
    feed = tenant(10)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config(**INCREMENTAL)
    await h.poller.poll(src)
    feed.records["1P02000004"].update(Arr=1.5, ModifiedDate=FUTURE)
    with capture_logs() as logs:
        first = await h.poller.poll(src, "incremental")
    assert h.changes() == [("updated", "1P02000004")]
    ceiling = h.clock.now() + MAX_CLOCK_SKEW
    mark = h.store.state("companies").watermark
    assert mark is not None
    assert mark <= ceiling.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    h.clock.advance(120)
    feed.records["1P02000007"].update(Arr=2.5, ModifiedDate="2026-11-23T16:01:00.000Z")
    await h.poller.poll(src, "incremental")
    assert h.changes() == [("updated", "1P02000004"), ("updated", "1P02000007")]
    assert first.future == 1
    (warning,) = [e for e in logs if e["event"] == "poll.future_modified"]
    assert warning["sample_keys"] == ["1P02000004"]


async def test_a_full_sweep_lowers_a_watermark_that_is_past_its_start(tmp_path: Path) -> None:
    """A watermark already in the future (stored by an earlier version) is brought back
    to no later than the sweep's own start."""
    feed = tenant(10)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config(**INCREMENTAL)
    await h.poller.poll(src)
    h.store.set_state("companies", watermark=FUTURE)
    await h.poller.poll(src)
    mark = h.store.state("companies").watermark
    assert mark is not None
    assert mark <= "2026-11-23T16:00:00.000Z"
    feed.records["1P02000002"].update(Arr=9.5, ModifiedDate="2026-11-23T16:00:30.000Z")
    h.clock.advance(60)
    await h.poller.poll(src, "incremental")
    assert h.changes() == [("updated", "1P02000002")]


async def test_an_incremental_restarts_from_the_last_sweep_when_the_watermark_is_future(
    tmp_path: Path,
) -> None:
    """An incremental that finds a future watermark reads again from the last full
    sweep (nothing between is skipped) and says so in the log."""
    feed = tenant(10)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config(**INCREMENTAL)
    await h.poller.poll(src)
    h.store.set_state("companies", watermark=FUTURE)
    h.clock.advance(60)
    feed.records["1P02000006"].update(Arr=4.5, ModifiedDate="2026-11-23T16:00:30.000Z")
    with capture_logs() as logs:
        await h.poller.poll(src, "incremental")
    assert h.changes() == [("updated", "1P02000006")]
    assert any(e["event"] == "poll.watermark_reset" for e in logs)
    assert h.store.state("companies").watermark == "2026-11-23T16:00:30.000Z"


async def test_the_sweep_watermark_never_passes_its_start(tmp_path: Path) -> None:
    """A baseline that reads a future-dated record keeps the watermark at its start
    (a guard: sweeps already capped their own mark), and counts the record."""
    feed = tenant(5)
    feed.records["1P02000001"]["ModifiedDate"] = FUTURE
    h = Harness(tmp_path / "w.db", feed)
    result = await h.poller.poll(source_config(**INCREMENTAL))
    assert result.future == 1
    assert h.store.state("companies").watermark == "2026-11-23T10:00:00.000Z"
