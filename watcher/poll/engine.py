"""The poll engine: full sweeps, incremental reads and delete-log reads.

I/O orchestration only: the decisions are the pure diff (:mod:`watcher.core.diff`)
and the event shapes (:mod:`watcher.core.events`); storage is :class:`Store`.

Full sweep
    Streams every page and compares it with the stored state *page by page*:
    stored fingerprints for the page's keys are read, only changed keys load
    their stored record, and the page's snapshot changes, events and queued
    deliveries commit in one transaction. Seen keys go to a temp table, so memory
    is bounded by the page size. Deletes are decided after the last page: keys
    not seen are read again by key (offset paging skips rows when data moves
    mid-sweep; a short reply ends paging early) and only keys that consecutive
    by-key reads agree are gone are deleted (see :meth:`Poller._read_absent`),
    in batches, each batch one transaction. If they exceed ``max_delete_fraction`` of the source, no
    delete is applied: the hold is recorded, logged, and one
    ``gainsight.watcher.delete_held`` event is emitted; a sweep run with
    ``allow_mass_delete`` applies it.

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
    covers (at the end, when the source's order cannot be trusted). Whole-day
    filters (the Cockpit list) floor the lower bound to midnight.

Delete log
    Reads Gainsight's delete feed since the last read (less the overlap; CTAs:
    the whole deleted list), confirms each stored key is really gone, and emits
    ``deleted`` events.

Crash safety: every commit is atomic and idempotent against the stored state, so
a poll killed anywhere and run again neither loses nor duplicates an event.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from watcher.clock import Clock, SystemClock
from watcher.config import SourceConfig
from watcher.core.diff import Change, Touch, compare, record_key
from watcher.core.events import change_event, delete_held_event, uuid7
from watcher.core.normalize import Record, fingerprint, normalize_record, normalize_value
from watcher.dates import format_utc, parse_iso
from watcher.errors import PollError, SourceError, StoreError
from watcher.gainsight.budget import Priority
from watcher.gainsight.query import CTA_LIST_PATH, Condition, modified_since
from watcher.logging import get_logger
from watcher.poll.paging import range_pages, read_ahead
from watcher.poll.source import PageLike, RecordSource
from watcher.store.store import PageCommit, Store

Mode = Literal["full", "incremental", "delete_log"]
Trigger = Literal["manual", "scheduled"]
Hook = Callable[[str], None]

# A hold below this many deletes would make tiny sources (a handful of CTAs)
# unusable: one delete of four records is 25%.
MIN_HELD_DELETES = 10
DAY = timedelta(days=1)
GC_EVERY_PAGES = 8
CONFIRM_EMPTY_READS = 2  # consecutive by-key reads that must all lack a key to delete it
MAX_CONFIRM_READS = 8
DELETE_LOG_RETENTION = timedelta(days=15)

_log = get_logger("watcher.poll")


def _no_hook(_point: str) -> None:
    return None


def _cockpit_list(source: SourceConfig) -> bool:
    """The Cockpit CTA list: page numbers, documented operators only (no key ranges)."""
    return source.effective_paging == "page" and source.effective_path == CTA_LIST_PATH


def _collect_garbage(pages: int) -> None:
    """Free the HTTP replies of past pages now: they sit in reference cycles, and
    left to the generational collector they pile up (RSS grows with the tenant)."""
    if pages % GC_EVERY_PAGES == 0:
        gc.collect()


@dataclass
class PollResult:
    """What one poll did; ``events`` are the committed CloudEvents."""

    poll_id: str
    source: str
    mode: str
    trigger: str
    dry_run: bool = False
    outcome: str = "running"
    baseline: bool = False
    pages: int = 0
    records: int = 0
    api_calls: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    touched: int = 0
    missing: int = 0
    reappeared: int = 0
    held: int = 0
    error: str | None = None
    started: float = 0.0
    elapsed_s: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "pages": self.pages,
            "records": self.records,
            "api_calls": self.api_calls,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
        }


@dataclass
class _Sweep:
    """Per-poll working state."""

    source: SourceConfig
    result: PollResult
    emit_created: bool
    keep_events: int  # how many committed events the result keeps (memory stays bounded)
    max_modified: str | None = None


class Poller:
    """Runs polls of configured sources against a :class:`RecordSource` and a :class:`Store`."""

    def __init__(
        self,
        store: Store,
        client: RecordSource,
        *,
        host: str,
        clock: Clock | None = None,
        random_bits: Callable[[], int] | None = None,
        hook: Hook | None = None,
        confirm_batch: int = 500,
        delete_batch: int = 500,
        max_kept_events: int = 1000,
    ) -> None:
        self.store = store
        self.client = client
        self.host = host
        self.clock: Clock = clock or SystemClock()
        self._bits = random_bits or (lambda: secrets.randbits(74))
        self.hook = hook or _no_hook
        self.confirm_batch = confirm_batch
        self.delete_batch = delete_batch
        self.max_kept_events = max_kept_events

    def new_id(self) -> str:
        return uuid7(self.clock.now(), self._bits())

    # -- entry point -------------------------------------------------------------

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
        result = PollResult(self.new_id(), source.name, mode, trigger, dry_run=dry_run)
        result.baseline = baseline
        result.started = self.clock.monotonic()
        if not dry_run:
            self.store.start_poll(result.poll_id, source.name, mode, trigger)
        sweep = _Sweep(
            source,
            result,
            emit_created=not baseline or source.baseline == "emit",
            keep_events=self.max_kept_events,
        )
        try:
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
            _log.info("poll.goal_object", source=source.name, object=name)
        return source.model_copy(update={"object": name})

    def _finish(self, sweep: _Sweep, outcome: str, error: str | None) -> None:
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
                _log.error("poll.history_failed", source=result.source, error=str(exc))
        log = _log.warning if outcome in ("failed", "held") else _log.info
        log(
            "poll.finished",
            source=result.source,
            poll_id=result.poll_id,
            mode=result.mode,
            trigger=result.trigger,
            outcome=outcome,
            dry_run=result.dry_run,
            baseline=result.baseline,
            pages=result.pages,
            records=result.records,
            api_calls=result.api_calls,
            created=result.created,
            updated=result.updated,
            deleted=result.deleted,
            held=result.held,
            duration_s=round(result.elapsed_s, 3),
            error=error,
        )

    # -- shared: one batch of records -> one commit --------------------------------

    def _process(
        self, sweep: _Sweep, records: Sequence[Record], *, mark_seen: bool = False
    ) -> PageCommit:
        """Compare ``records`` with the stored state; build the commit (not yet written).

        The fast path: the fingerprint of each record *as received* is compared with
        the stored one, so an unchanged record costs a hash and an index lookup.
        Only records whose fingerprint differs are normalized and compared field by
        field (a different spelling of the same values then refreshes the snapshot
        silently).
        """
        source = sweep.source
        result = sweep.result
        page = PageCommit(poll_id=result.poll_id)
        fresh: dict[str, Record] = {}
        prints: dict[str, int] = {}
        modified = source.modified_field
        top = sweep.max_modified
        key_field = source.key
        for raw in records:
            key = raw.get(key_field)
            if type(key) is not str or not key:
                key = record_key(raw, key_field)
            fresh[key] = raw
            prints[key] = fingerprint(raw)
            stamp = raw.get(modified)
            if stamp is not None and type(stamp) is not str:
                stamp = normalize_value(stamp, modified)
            if type(stamp) is str and (top is None or stamp > top):
                top = stamp
        sweep.max_modified = top
        keys = list(fresh)
        if mark_seen:
            page.seen = keys
        stored = self.store.fingerprints(source.name, keys)
        changed = [k for k in keys if stored.get(k) != prints[k]]
        if not changed:
            return page
        befores = self.store.records(source.name, [k for k in changed if k in stored])
        now = self.clock.now()
        for key in changed:
            after = normalize_record(fresh[key])
            outcome = compare(key, befores.get(key), after, source.ignore_fields)
            page.writes.append((key, prints[key], after))
            if isinstance(outcome, Change):
                if outcome.change == "created":
                    result.created += 1
                    if not sweep.emit_created:
                        continue
                else:
                    result.updated += 1
                page.events.append(self._event(sweep, outcome, now))
            elif isinstance(outcome, Touch):
                result.touched += 1
        return page

    def _event(self, sweep: _Sweep, change: Change, now: datetime) -> dict[str, Any]:
        source = sweep.source
        return change_event(
            change,
            event_id=uuid7(now, self._bits()),
            time=now,
            host=self.host,
            source_name=source.name,
            object_name=source.object_name,
            event_kind=source.event_kind,
            poll_id=sweep.result.poll_id,
            poll_mode=sweep.result.mode,
        )

    def _commit(self, sweep: _Sweep, page: PageCommit) -> None:
        if sweep.result.dry_run:
            if page.seen:
                self.store.seen_add(sweep.source.name, page.seen)
            return
        committed = self.store.commit(sweep.source.name, page)
        room = sweep.keep_events - len(sweep.result.events)
        if room > 0:
            sweep.result.events.extend(committed[:room])

    # -- full sweep ------------------------------------------------------------

    async def _full(
        self,
        sweep: _Sweep,
        allow_mass_delete: bool,
        progress: Callable[[PollResult], None] | None,
    ) -> None:
        source, result = sweep.source, sweep.result
        started_at = format_utc(self.clock.now())
        total_before = self.store.count_snapshots(source.name)
        self.store.seen_reset(source.name)
        try:
            async for fetched in self._sweep_pages(sweep):
                result.pages += 1
                result.records += len(fetched.records)
                result.api_calls += fetched.calls
                self.hook("page_fetched")
                page = self._process(sweep, fetched.records, mark_seen=total_before > 0)
                page.poll_counts = {"pages": 1, "records": len(fetched.records)}
                self._commit(sweep, page)
                self.hook("page_committed")
                _collect_garbage(result.pages)
                if progress is not None:
                    progress(result)
            if total_before > 0:  # only keys stored before this sweep can be missing
                await self._sweep_deletes(sweep, total_before, allow_mass_delete)
        finally:
            self.store.seen_clear(source.name)
        if result.dry_run or result.outcome == "held":
            return
        state = self.store.state(source.name)
        updates: dict[str, Any] = {"last_full_at": started_at}
        if state.baseline_at is None:
            updates["baseline_at"] = started_at
        if state.delete_log_since is None:
            updates["delete_log_since"] = started_at
        mark = min(sweep.max_modified or started_at, started_at)
        if state.watermark is None or mark > state.watermark:
            updates["watermark"] = mark
        self._commit(sweep, PageCommit(state=updates, poll_id=result.poll_id))

    def _sweep_pages(self, sweep: _Sweep) -> AsyncIterator[PageLike]:
        if sweep.source.effective_paging == "offset" or _cockpit_list(sweep.source):
            return read_ahead(self.client.iter_pages(sweep.source, priority=Priority.LOW))
        return self._range_pages(sweep)

    def _range_pages(
        self, sweep: _Sweep, base: Sequence[Condition] = (), priority: Priority = Priority.LOW
    ) -> AsyncIterator[PageLike]:
        def probe(calls: int) -> None:
            sweep.result.api_calls += calls  # a probe's rows are read again in its parts
            self.hook("range_split")

        return range_pages(self.client, sweep.source, base=base, priority=priority, probe=probe)

    async def _sweep_deletes(self, sweep: _Sweep, total_before: int, allow_mass: bool) -> None:
        source, result = sweep.source, sweep.result
        result.missing = self.store.missing_collect(source.name)
        if not result.missing:
            self._clear_hold(sweep)
            return
        # Confirm: a key the pages skipped is read again by key; only absent keys are deletes.
        for batch in self.store.missing_batches(source.name, self.confirm_batch):
            self.hook("confirm_batch")
            absent = set(await self._read_absent(sweep, batch, mark_seen=True))
            undecided = [k for k in batch if k not in absent]
            if undecided:  # found again (already marked) or not confirmed: not deleted now
                self.store.seen_add(source.name, undecided)
        confirmed = self.store.missing_collect(source.name)
        if not confirmed:
            self._clear_hold(sweep)
            return
        fraction = confirmed / total_before if total_before else 1.0
        if (
            not allow_mass
            and confirmed >= MIN_HELD_DELETES
            and fraction > source.max_delete_fraction
        ):
            self._hold(sweep, confirmed, total_before)
            return
        for batch in self.store.missing_batches(source.name, self.delete_batch):
            self.hook("delete_batch")
            self._delete(sweep, batch)
        self._clear_hold(sweep)

    async def _read_absent(
        self, sweep: _Sweep, keys: list[str], *, mark_seen: bool = False
    ) -> list[str]:
        """Those of ``keys`` that reads by key confirm are gone; found records are processed.

        A reply may be incomplete (a short page, a dropped row), so absence counts
        only when :data:`CONFIRM_EMPTY_READS` consecutive reads of the remaining keys
        find none of them, and a read that asked for a *sentinel* - a key known to
        exist, sorting after the keys asked for - counts only if the sentinel came
        back. Keys still unsettled after :data:`MAX_CONFIRM_READS` reads are not
        confirmed (a later sweep decides).
        """
        source, result = sweep.source, sweep.result
        remaining = list(keys)
        empties = reads = misses = 0
        while remaining and reads < MAX_CONFIRM_READS:
            sentinel = None if misses >= 2 else self.store.key_after(source.name, max(remaining))
            ask = [*remaining, sentinel] if sentinel is not None else remaining
            found = await self.client.fetch_by_keys(source, ask, priority=Priority.HIGH)
            reads += 1
            result.api_calls += max(1, -(-len(ask) // source.effective_page_size))
            found_keys = {record_key(r, source.key) for r in found}
            wanted = set(remaining)
            fresh = [r for r in found if record_key(r, source.key) in wanted]
            if fresh:
                result.reappeared += len(fresh)
                self._commit(sweep, self._process(sweep, fresh, mark_seen=mark_seen))
                remaining = [k for k in remaining if k not in found_keys]
                empties = 0
            elif sentinel is not None and sentinel not in found_keys:
                misses += 1  # an incomplete reply proves nothing
                empties = 0
            else:
                empties += 1
                if empties >= CONFIRM_EMPTY_READS:
                    return remaining
        if remaining:
            _log.warning(
                "poll.delete_unconfirmed",
                source=source.name,
                keys=len(remaining),
                reads=reads,
                note="by-key reads disagreed; these keys are checked again next sweep",
            )
        return []

    def _delete(self, sweep: _Sweep, keys: list[str]) -> None:
        befores = self.store.records(sweep.source.name, keys)
        page = PageCommit(poll_id=sweep.result.poll_id)
        now = self.clock.now()
        for key in keys:
            before = befores.get(key)
            if before is None:
                continue  # deleted by an earlier, interrupted run: its event exists
            page.deletes.append(key)
            page.events.append(self._event(sweep, Change("deleted", key, before, None), now))
        sweep.result.deleted += len(page.deletes)
        self._commit(sweep, page)

    def _hold(self, sweep: _Sweep, confirmed: int, total: int) -> None:
        source, result = sweep.source, sweep.result
        result.held = confirmed
        result.outcome = "held"
        _log.warning(
            "poll.delete_held",
            source=source.name,
            poll_id=result.poll_id,
            held=confirmed,
            total=total,
            max_delete_fraction=source.max_delete_fraction,
            apply_with=f"watcher poll {source.name} --full --allow-mass-delete",
        )
        if result.dry_run:
            return
        state = self.store.state(source.name)
        now = self.clock.now()
        page = PageCommit(poll_id=result.poll_id)
        page.state = {
            "held_at": format_utc(now),
            "held_count": confirmed,
            "held_total": total,
            "held_poll_id": result.poll_id,
        }
        if state.held_at is None:  # one event per hold, not one per sweep that still holds
            sample = next(self.store.missing_batches(source.name, 10), [])
            page.events.append(
                delete_held_event(
                    event_id=uuid7(now, self._bits()),
                    time=now,
                    host=self.host,
                    source_name=source.name,
                    object_name=source.object_name,
                    poll_id=result.poll_id,
                    poll_mode=result.mode,
                    held=confirmed,
                    total=total,
                    max_delete_fraction=source.max_delete_fraction,
                    sample_keys=sample,
                )
            )
        self._commit(sweep, page)

    def _clear_hold(self, sweep: _Sweep) -> None:
        if sweep.result.dry_run:
            return
        if self.store.state(sweep.source.name).held_at is not None:
            self.store.set_state(
                sweep.source.name,
                held_at=None,
                held_count=None,
                held_total=None,
                held_poll_id=None,
            )

    # -- incremental -----------------------------------------------------------

    def incremental_since(self, source: SourceConfig, watermark: str) -> datetime:
        """Lower bound of an incremental read: watermark less the overlap (CTA: whole day)."""
        mark = parse_iso(watermark) or self.clock.now()
        since = mark - timedelta(seconds=source.overlap_seconds)
        if source.effective_paging == "page":
            since = since.replace(hour=0, minute=0, second=0, microsecond=0)
        return since

    async def _incremental(
        self, sweep: _Sweep, progress: Callable[[PollResult], None] | None
    ) -> None:
        source, result = sweep.source, sweep.result
        state = self.store.state(source.name)
        watermark = state.watermark or state.baseline_at or format_utc(self.clock.now())
        since = self.incremental_since(source, watermark)
        # Offset paging ordered by (modified, key) lets each page carry its watermark;
        # Cockpit lists have no documented order, so their watermark waits for the end.
        ordered = source.effective_paging == "offset"
        order_by: dict[str, Any] = {source.modified_field: "asc", source.key: "asc"}
        sweep.max_modified = watermark
        condition = modified_since(source, since, until=self.clock.now() + DAY)
        if ordered:
            pages = self.client.iter_pages(
                source, conditions=(condition,), order_by=order_by, priority=Priority.HIGH
            )
        elif _cockpit_list(source):
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
            _collect_garbage(result.pages)
            if progress is not None:
                progress(result)
        if sweep.max_modified and sweep.max_modified > watermark:
            self._commit(
                sweep, PageCommit(state={"watermark": sweep.max_modified}, poll_id=result.poll_id)
            )

    # -- delete log ------------------------------------------------------------

    async def _delete_log(self, sweep: _Sweep) -> None:
        source, result = sweep.source, sweep.result
        state = self.store.state(source.name)
        now = self.clock.now()
        since_text = state.delete_log_since or state.baseline_at
        since = (parse_iso(since_text) if since_text else None) or now
        since = max(since - timedelta(seconds=source.overlap_seconds), now - DELETE_LOG_RETENTION)
        deleted = await self.client.deleted_since(source, since, priority=Priority.HIGH)
        result.api_calls += 1
        result.records = len(deleted)
        keys = list(dict.fromkeys(str(d.key) for d in deleted))
        newest = max(
            (d.deleted_at for d in deleted if d.deleted_at is not None),
            default=None,
        )
        stored = self.store.fingerprints(source.name, keys)
        known = [k for k in keys if k in stored]
        for start in range(0, len(known), self.confirm_batch):
            batch = known[start : start + self.confirm_batch]
            self.hook("confirm_batch")
            gone = await self._read_absent(sweep, batch)
            if gone:
                self._delete(sweep, gone)
        if newest is not None:
            mark = format_utc(newest.astimezone(UTC))
            if state.delete_log_since is None or mark > state.delete_log_since:
                self._commit(
                    sweep, PageCommit(state={"delete_log_since": mark}, poll_id=result.poll_id)
                )
