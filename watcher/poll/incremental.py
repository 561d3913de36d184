"""Incremental reads: ``modified_field GTE (watermark - overlap)``, the watermark
moved in the transaction of the page it covers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from watcher.config import SourceConfig
from watcher.dates import format_utc, parse_iso
from watcher.gainsight.budget import Priority
from watcher.gainsight.query import modified_since
from watcher.gainsight.routes import paging_of
from watcher.poll.pages import PageWork
from watcher.poll.work import (
    DAY,
    MAX_CLOCK_SKEW,
    PollResult,
    Sweep,
    cockpit_list,
    collect_garbage,
    log,
)
from watcher.store.store import PageCommit


class Incremental(PageWork):
    """Incremental reads: records modified since the watermark (less the overlap)."""

    def incremental_since(self, source: SourceConfig, watermark: str) -> datetime:
        """Lower bound of an incremental read: watermark less the overlap (CTA: whole day)."""
        mark = parse_iso(watermark) or self.clock.now()
        since = mark - timedelta(seconds=source.overlap_seconds)
        if paging_of(source) == "page":
            since = since.replace(hour=0, minute=0, second=0, microsecond=0)
        return since

    async def _incremental(
        self, sweep: Sweep, progress: Callable[[PollResult], None] | None
    ) -> None:
        source, result = sweep.source, sweep.result
        state = self.store.state(source.name)
        watermark = state.watermark or state.baseline_at or format_utc(self.clock.now())
        if watermark > format_utc(self.clock.now() + MAX_CLOCK_SKEW):
            watermark = self._future_watermark(sweep, watermark)
        since = self.incremental_since(source, watermark)
        # Offset paging ordered by (modified, key) lets each page carry its watermark;
        # Cockpit lists have no documented order, so their watermark waits for the end.
        ordered = paging_of(source) == "offset"
        order_by: dict[str, Any] = {source.modified_field: "asc", source.key: "asc"}
        sweep.max_modified = watermark
        condition = modified_since(source, since, until=self.clock.now() + DAY)
        if ordered:
            pages = self.client.iter_pages(
                source, conditions=(condition,), order_by=order_by, priority=Priority.HIGH
            )
        elif cockpit_list(source):
            pages = self.client.iter_pages(source, conditions=(condition,), priority=Priority.HIGH)
        else:
            pages = self._range_pages(sweep, (condition,), Priority.HIGH)
        async for fetched in pages:
            result.pages += 1
            result.records += len(fetched.records)
            result.api_calls += fetched.calls
            self.hook("page_fetched")
            page = self._process(sweep, fetched.records)
            page.poll_counts = {"pages": 1, "records": len(fetched.records)}
            if ordered and sweep.max_modified and sweep.max_modified > watermark:
                page.state = {"watermark": sweep.max_modified}
            self._commit(sweep, page)
            self.hook("page_committed")
            collect_garbage(result.pages)
            if progress is not None:
                progress(result)
        if sweep.max_modified and sweep.max_modified > watermark:
            self._commit(
                sweep, PageCommit(state={"watermark": sweep.max_modified}, poll_id=result.poll_id)
            )

    def _future_watermark(self, sweep: Sweep, watermark: str) -> str:
        """A watermark later than now (stored by an older version, or a clock that
        jumped back): start again from the last full sweep, which read everything."""
        source, result = sweep.source, sweep.result
        state = self.store.state(source.name)
        now = format_utc(self.clock.now())
        mark = min(state.last_full_at or state.baseline_at or now, now)
        log.warning(
            "poll.watermark_reset",
            source=source.name,
            poll_id=result.poll_id,
            watermark=watermark,
            reset_to=mark,
            note="the watermark was later than now; reading again from the last full sweep",
        )
        self._commit(sweep, PageCommit(state={"watermark": mark}, poll_id=result.poll_id))
        return mark
