"""The full sweep: all pages compared page by page, then the keys not seen are
confirmed gone (:mod:`watcher.poll.confirm`) and deleted, or held.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from watcher.dates import format_utc
from watcher.gainsight.budget import Priority
from watcher.gainsight.routes import paging_of
from watcher.poll.confirm import Confirm
from watcher.poll.paging import read_ahead
from watcher.poll.source import PageLike
from watcher.poll.work import (
    MIN_HELD_DELETES,
    PollResult,
    Sweep,
    cockpit_list,
    collect_garbage,
)
from watcher.store.store import PageCommit


class FullSweep(Confirm):
    """The full sweep: every page, then the deletes of keys no page had."""

    async def _full(
        self,
        sweep: Sweep,
        allow_mass_delete: bool,
        progress: Callable[[PollResult], None] | None,
    ) -> None:
        source, result = sweep.source, sweep.result
        started_at = format_utc(self.clock.now())
        stored_before = self.store.has_snapshots(source.name)
        self.store.seen_reset(source.name)
        self._sweeps[source.name] = sweep
        sweep.by_range = paging_of(source) == "offset" and not result.dry_run
        sweep.paging = True
        try:
            async for fetched in self._sweep_pages(sweep):
                result.pages += 1
                result.records += len(fetched.records)
                result.api_calls += fetched.calls
                self.hook("page_fetched")
                if self._settled(sweep, fetched):
                    page = PageCommit(poll_id=result.poll_id)
                else:
                    # Every sweep marks what it saw, the baseline too: a key read twice
                    # is noticed whatever the stored state.
                    page = self._process(
                        sweep, fetched.records, mark_seen=True, page_number=fetched.number
                    )
                    page.sweep_page, sweep.window_page = sweep.window_page, None
                page.poll_counts = {"pages": 1, "records": len(fetched.records)}
                self._commit(sweep, page)
                self.hook("page_committed")
                collect_garbage(result.pages)
                if progress is not None:
                    progress(result)
            sweep.paging = False
            if sweep.by_range:  # every window read: hints for other windows are stale
                self.store.sweep_pages_keep(source.name, sweep.windows)
            if stored_before:  # only keys stored before this sweep can be missing
                await self._sweep_deletes(sweep, allow_mass_delete)
        finally:
            self._sweeps.pop(source.name, None)
            self.store.seen_clear(source.name)
        if result.dry_run or result.outcome == "held":
            return
        state = self.store.state(source.name)
        updates: dict[str, Any] = {"last_full_at": started_at}
        if state.baseline_at is None:
            updates["baseline_at"] = started_at
        if state.delete_log_since is None:
            updates["delete_log_since"] = started_at
        # A sweep read everything there was when it started: the watermark becomes
        # no later than that start, even if an earlier poll had put it later.
        mark = min(sweep.max_modified or started_at, started_at)
        if state.watermark is not None:
            mark = min(max(mark, state.watermark), started_at)
        if mark != state.watermark:
            updates["watermark"] = mark
        self._commit(sweep, PageCommit(state=updates, poll_id=result.poll_id))

    def _settled(self, sweep: Sweep, fetched: PageLike) -> bool:
        """Whether ``fetched`` is a page this source's last sweeps read the usual way in
        the same window, with the same reply, and the window's row is still there (any
        write in the window since dropped it: :mod:`watcher.store.sweep_pages`): then
        nothing in it changed, and only the sweep's place and latest modified date move
        on. Otherwise the row, if any, is kept for :meth:`_see`. Every page of a sweep in
        key order notes where its window starts (:attr:`Sweep.windows`), settled or not."""
        sweep.hint = sweep.read_version = None
        sweep.reply_digest = fetched.digest
        if not (sweep.by_range and sweep.paging and fetched.records):
            return False
        sweep.windows.append(sweep.covered or "")
        # Before the row is read: a commit by another connection after this moment
        # makes the page's commit check the window again.
        sweep.read_version = self.store.data_version()
        hit = sweep.hint = self.store.sweep_page(sweep.source.name, sweep.covered)
        if hit is None or fetched.digest is None or hit.digest != fetched.digest:
            return False
        sweep.seen_pages += 1
        sweep.result.settled += 1
        sweep.covered = hit.last
        if hit.top is not None and (sweep.max_modified is None or hit.top > sweep.max_modified):
            sweep.max_modified = hit.top
        self.hook("page_settled")
        return True

    def _sweep_pages(self, sweep: Sweep) -> AsyncIterator[PageLike]:
        if paging_of(sweep.source) == "offset" or cockpit_list(sweep.source):
            return read_ahead(self.client.iter_pages(sweep.source, priority=Priority.LOW))
        return self._range_pages(sweep)

    def _seen_too(self, sweep: Sweep, keys: Iterable[str]) -> None:
        """Count ``keys`` as seen by the sweep (never deleted by it)."""
        if sweep.by_range:
            self.store.missing_drop(sweep.source.name, keys)
        else:
            self.store.seen_add(sweep.source.name, keys)

    def _collect_missing(self, sweep: Sweep) -> int:
        """The stored keys the sweep did not see, in the store's missing set; how many."""
        name = sweep.source.name
        if sweep.by_range:  # the windows' missing keys are in it already
            return self.store.missing_prune(name)
        return self.store.missing_collect(name)

    def _total_before(self, sweep: Sweep) -> int:
        """Snapshots of the source before the sweep: those now, less the sweep's own
        creates (counted only when something is missing: a count reads every key).
        Records the fast lane created meanwhile are counted in, a slight overestimate."""
        total = self.store.count_snapshots(sweep.source.name)
        return total if sweep.result.dry_run else max(total - sweep.result.created, 0)

    async def _sweep_deletes(self, sweep: Sweep, allow_mass: bool) -> None:
        source, result = sweep.source, sweep.result
        if sweep.by_range:  # the stored keys after the last window: no page had them
            self.store.missing_tail(source.name, sweep.covered)
        # The sweep guard: a key the fast lane wrote while the sweep ran exists.
        self._seen_too(sweep, sweep.lane_written)
        result.missing = self._collect_missing(sweep)
        if not result.missing:
            self._clear_hold(sweep)
            return
        total_before = self._total_before(sweep)
        if result.records == 0 and not allow_mass:
            # Nothing read at all while records are stored: an outage, a tenant that
            # answers "no data" to everything, or an access key that lost its rights.
            # Reads by key would ask the same tenant again: hold without asking.
            self._hold(sweep, result.missing, total_before, "the sweep read no records")
            return
        # Confirm: a key the pages skipped is read again by key; only absent keys are deletes.
        for batch in self.store.missing_batches(source.name, self.confirm_batch):
            self.hook("confirm_batch")
            absent = set(await self._read_absent(sweep, batch, mark_seen=True))
            undecided = [k for k in batch if k not in absent]
            if undecided:  # found again (already marked) or not confirmed: not deleted now
                self._seen_too(sweep, undecided)
        # No await from here to the last delete: what the fast lane wrote during the
        # confirmation reads is known now, and the deletes below cannot race it.
        self._seen_too(sweep, sweep.lane_written)
        confirmed = self._collect_missing(sweep)
        if not confirmed:
            self._clear_hold(sweep)
            return
        fraction = confirmed / total_before if total_before else 1.0
        reason = None
        if confirmed >= total_before:  # whatever the size: a 5-record source is not "small"
            reason = "the sweep would delete every record of the source"
        elif confirmed >= MIN_HELD_DELETES and fraction > source.max_delete_fraction:
            reason = "the deletes exceed max_delete_fraction"
        if reason is not None and not allow_mass:
            self._hold(sweep, confirmed, total_before, reason)
            return
        for batch in self.store.missing_batches(source.name, self.delete_batch):
            self.hook("delete_batch")
            self._delete(sweep, batch)
        self._clear_hold(sweep)
