"""The poll engine: full sweeps, incremental reads and delete-log reads.

I/O orchestration only: the decisions are the pure diff (:mod:`watcher.core.diff`)
and the event shapes (:mod:`watcher.core.events`); storage is :class:`Store`.

Full sweep
    Streams every page and compares it with the stored state *page by page*:
    stored fingerprints for the page's keys are read, only changed keys load
    their stored record, and the page's snapshot changes, events and queued
    deliveries commit in one transaction. A sweep in key order reads each page's
    stored fingerprints as one key window (settled by its count and fingerprint
    sums when nothing changed), and the stored keys a window's page lacks go to a
    temp table of missing keys; a page out of order hands the sweep over to a temp
    table of seen keys. Memory is bounded by the page size. Deletes are decided
    after the last page: keys not seen are read again by key (offset paging skips
    rows when data moves mid-sweep; a short reply ends paging early) and only keys
    that consecutive by-key reads agree are gone are deleted (see
    :meth:`Poller._read_absent`), in batches, each batch one transaction. If they
    exceed ``max_delete_fraction`` of the source, no delete is applied: the hold is
    recorded, logged, and one
    ``gainsight.watcher.delete_held`` event is emitted; a sweep run with
    ``allow_mass_delete`` applies it. Whatever the fraction, a sweep that read no
    record while records are stored, or that would delete every stored record, is
    held too. A key an earlier page already had is dropped (the first copy counts).

Sources read through the query route (companies, CTAs, goals, any object - the
default for every kind) page by ``offset`` ordered by the key.

The Cockpit list (``api = "cockpit"``)
    documents no sort order and only a few operators (no ``GTE``/``LT``, no
    ``IN``), so its sweep pages plainly by page number: a row the pages skip is
    read again by key (``EQ`` terms) before any delete, and a row they miss is seen
    by the next sweep or incremental. Its incremental filter is ``BTW`` on whole
    UTC days. Other page-numbered routes (a ``path`` override) read *key ranges*:
    a range answered in one page was read completely; a longer one is split at the
    quantiles of the keys it returned (``key GTE lo AND key LT hi``).

Incremental
    ``modified_field GTE (watermark - overlap)``, ordered by modified field then
    key. The watermark advances in the transaction that commits the page it
    covers (at the end, when the source's order cannot be trusted), never past
    now + :data:`MAX_CLOCK_SKEW`; a full sweep brings it back to no later than its
    own start. Whole-day filters (the Cockpit list) floor the lower bound to midnight.

Delete log
    Reads Gainsight's delete feed since the last read (less the overlap; CTAs:
    the whole deleted list), confirms each stored key is really gone, and emits
    ``deleted`` events.

Odd records (no usable key, a key twice in a page, a future modified date) are
handled by :mod:`watcher.poll.intake`: skipped or dropped, counted, logged with
where they were; the rest of the page goes on. Each snapshot records the field set
(effective select) it was read with: fields in only one of the snapshot's and the
poll's select are refreshed silently.

Crash safety: every commit is atomic and idempotent against the stored state, so
a poll killed anywhere and run again neither loses nor duplicates an event.

Where each job lives: :mod:`~watcher.poll.pages` (one batch of records -> one routed
commit, shared), :mod:`~watcher.poll.sweep` (full sweep), :mod:`~watcher.poll.confirm`
(delete confirmation, mass-delete hold), :mod:`~watcher.poll.incremental`,
:mod:`~watcher.poll.delete_log`; :mod:`~watcher.poll.work` holds the poll's result and
working state. :class:`Poller` here runs one poll of any mode and records it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from watcher.config import SourceConfig
from watcher.core.modes import Mode
from watcher.errors import PollError, SourceError, StoreError
from watcher.poll.delete_log import DeleteLog
from watcher.poll.incremental import Incremental
from watcher.poll.sweep import FullSweep
from watcher.poll.work import (
    MAX_CLOCK_SKEW,
    MIN_HELD_DELETES,
    PollResult,
    Sweep,
    Trigger,
    log,
)

__all__ = ["MAX_CLOCK_SKEW", "MIN_HELD_DELETES", "PollResult", "Poller"]


class Poller(FullSweep, Incremental, DeleteLog):
    """Runs polls of configured sources against a :class:`RecordSource` and a :class:`Store`.

    ``matcher`` (:func:`watcher.rules.match.build_router`) routes each event to its
    (rule, sink) pairs before the commit; without one, events are stored and nothing
    is queued."""

    async def poll(
        self,
        source: SourceConfig,
        mode: Mode = "full",
        *,
        trigger: Trigger = "manual",
        dry_run: bool = False,
        allow_mass_delete: bool = False,
        progress: Callable[[PollResult], None] | None = None,
    ) -> PollResult:
        """Run one poll; record it in the poll history; raise :class:`PollError` on failure."""
        if source.needs_object_lookup:
            source = await self.resolve_object(source)
        state = self.store.state(source.name)
        baseline = state.baseline_at is None
        if baseline and mode != "full":
            mode = "full"  # nothing to compare an incremental or delete-log read with yet
        if mode == "full" and source.name in self._sweeps:
            # A fast-lane read of a source whose first sweep is still running: that
            # sweep is the baseline; one sweep of a source at a time.
            log.info("poll.skipped", source=source.name, reason="a full sweep is running")
            return PollResult(self.new_id(), source.name, mode, trigger, outcome="ok")
        result = PollResult(self.new_id(), source.name, mode, trigger, dry_run=dry_run)
        result.baseline = baseline
        result.started = self.clock.monotonic()
        if not dry_run:
            self.store.start_poll(result.poll_id, source.name, mode, trigger)
        sweep = Sweep(
            source,
            result,
            emit_created=not baseline or source.baseline == "emit",
            keep_events=self.max_kept_events,
        )
        try:
            self._prepare(sweep)
            if mode == "full":
                await self._full(sweep, allow_mass_delete, progress)
            elif mode == "incremental":
                await self._incremental(sweep, progress)
            else:
                await self._delete_log(sweep)
        except (SourceError, StoreError, ValueError) as exc:
            self._finish(sweep, "failed", str(exc))
            raise PollError(f"source {source.name!r}: {mode} poll failed: {exc}") from exc
        except asyncio.CancelledError:
            self._finish(sweep, "interrupted", "cancelled")
            raise
        if result.outcome == "running":
            result.outcome = "dry-run" if dry_run else "ok"
        self._finish(sweep, result.outcome, None)
        return result

    async def resolve_object(self, source: SourceConfig) -> SourceConfig:
        """A goal source without ``object``: the tenant's Customer Goals object, found in
        its metadata once and remembered in the store."""
        from watcher.gainsight.metadata import GOAL_META, find_goal_object

        name = self.store.meta_get(GOAL_META)
        if name is None:
            finder = getattr(self.client, "get_meta", None)
            if finder is None:
                raise PollError(
                    f"source {source.name!r}: set object = '<goals object API name>' "
                    "(this reader cannot look it up)"
                )
            try:
                name = await find_goal_object(self.client)  # type: ignore[arg-type]
            except SourceError as exc:
                raise PollError(f"source {source.name!r}: {exc}") from exc
            self.store.meta_set(GOAL_META, name)
            log.info("poll.goal_object", source=source.name, object=name)
        return source.model_copy(update={"object": name})

    def _finish(self, sweep: Sweep, outcome: str, error: str | None) -> None:
        result = sweep.result
        result.outcome = outcome
        result.error = error
        result.elapsed_s = self.clock.monotonic() - result.started
        if not result.dry_run:
            try:
                self.store.finish_poll(
                    result.poll_id,
                    outcome=outcome,
                    error=error,
                    counts=result.counts(),
                    mode=result.mode,
                )
            except StoreError as exc:  # the poll's own outcome matters more
                log.error("poll.history_failed", source=result.source, error=str(exc))
        if result.future:
            log.warning(
                "poll.future_modified",
                source=result.source,
                poll_id=result.poll_id,
                records=result.future,
                sample_keys=sweep.odd.future_keys,
                note=f"{sweep.source.modified_field} later than now; the watermark ignores it",
            )
        emit = log.warning if outcome in ("failed", "held") else log.info
        emit(
            "poll.finished",
            source=result.source,
            poll_id=result.poll_id,
            mode=result.mode,
            trigger=result.trigger,
            outcome=outcome,
            dry_run=result.dry_run,
            baseline=result.baseline,
            pages=result.pages,
            settled=result.settled,
            records=result.records,
            api_calls=result.api_calls,
            created=result.created,
            updated=result.updated,
            deleted=result.deleted,
            held=result.held,
            skipped=result.skipped,
            duplicates=result.duplicates,
            future=result.future,
            reselected=result.reselected,
            fields_added=result.fields_added,
            fields_removed=result.fields_removed,
            duration_s=round(result.elapsed_s, 3),
            error=error,
        )
