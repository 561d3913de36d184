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
from watcher.core.diff import Change, Touch, compare, key_of
from watcher.core.events import change_event, delete_held_event, uuid7
from watcher.core.modes import Mode
from watcher.core.normalize import Record, normalize_record
from watcher.dates import format_utc, parse_iso
from watcher.errors import PollError, SourceError, StoreError
from watcher.gainsight.budget import Priority
from watcher.gainsight.query import CTA_LIST_PATH, Condition, modified_since, select_of
from watcher.logging import get_logger
from watcher.poll.intake import RECORD_ERRORS, Oddities, Page, keep_one, read_records
from watcher.poll.paging import range_pages, read_ahead
from watcher.poll.source import PageLike, RecordSource
from watcher.rules.match import Router
from watcher.store.store import PageCommit, Store

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
# A modified date later than now plus this is not believed: it never moves the
# watermark (one record dated 2031 would otherwise freeze incremental reads).
MAX_CLOCK_SKEW = timedelta(minutes=5)

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
    held_reason: str | None = None
    skipped: int = 0  # records without a usable key, or that could not be compared
    duplicates: int = 0  # extra copies of a key already read in this poll (dropped)
    future: int = 0  # records whose modified date is later than now (watermark kept)
    reselected: int = 0  # snapshots retaken because `select` changed (those fields silent)
    fields_added: list[str] = field(default_factory=list)
    fields_removed: list[str] = field(default_factory=list)
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
    fields: frozenset[str] = frozenset()  # the effective select of this poll
    field_set: int | None = None  # its id in the store (None in a dry run of a new select)
    stored_sets: dict[int, frozenset[str]] = field(default_factory=dict)
    ignores: dict[int, tuple[frozenset[str], bool]] = field(default_factory=dict)
    seen_pages: int = 0
    odd: Oddities = field(init=False)

    def __post_init__(self) -> None:
        self.odd = Oddities(self.result, self.source.name, self.result.poll_id, self.source.key)


class Poller:
    """Runs polls of configured sources against a :class:`RecordSource` and a :class:`Store`.

    ``matcher`` (:func:`watcher.rules.match.build_router`) routes each event to its
    (rule, sink) pairs before the commit; without one, events are stored and nothing
    is queued.
    """

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
        matcher: Router | None = None,
    ) -> None:
        self.store = store
        self.matcher = matcher
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
        if result.future:
            _log.warning(
                "poll.future_modified",
                source=result.source,
                poll_id=result.poll_id,
                records=result.future,
                sample_keys=sweep.odd.future_keys,
                note=f"{sweep.source.modified_field} later than now; the watermark ignores it",
            )
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
            skipped=result.skipped,
            duplicates=result.duplicates,
            future=result.future,
            reselected=result.reselected,
            fields_added=result.fields_added,
            fields_removed=result.fields_removed,
            duration_s=round(result.elapsed_s, 3),
            error=error,
        )

    # -- shared: one batch of records -> one commit --------------------------------

    def _prepare(self, sweep: _Sweep) -> None:
        """The field set this poll reads with, and those the stored snapshots were taken with."""
        name = sweep.source.name
        sweep.fields = frozenset(select_of(sweep.source))
        sweep.field_set = self.store.field_set(name, sweep.fields, create=not sweep.result.dry_run)
        sweep.stored_sets = self.store.field_sets(name)

    def _process(
        self,
        sweep: _Sweep,
        records: Sequence[Record],
        *,
        mark_seen: bool = False,
        page_number: int = 0,
    ) -> PageCommit:
        """Compare ``records`` with the stored state; build the commit (not yet written).

        The fast path: the fingerprint of each record *as received* is compared with
        the stored one, so an unchanged record costs a hash and an index lookup.
        Only records whose fingerprint differs are normalized and compared field by
        field (a different spelling of the same values then refreshes the snapshot
        silently). The checks for odd data (a record without a usable key, a key
        read twice, a key that is not Unicode text) cost one test per page unless
        the page has one; such records are skipped or dropped with a warning, and
        the rest of the page goes on.
        """
        source = sweep.source
        result = sweep.result
        page = PageCommit(poll_id=result.poll_id, field_set=sweep.field_set)
        found, stored = self._read_page(sweep, records, mark_seen, page_number)
        fresh, prints = found.records, found.prints
        changed = [k for k in fresh if stored.get(k) != prints[k]]
        if not changed:
            return page
        befores = self.store.snapshot_rows(source.name, [k for k in changed if k in stored])
        now = self.clock.now()
        for key in changed:
            try:
                after, outcome = self._compare(sweep, key, fresh[key], befores.get(key))
            except RECORD_ERRORS as exc:
                why = f"not comparable ({exc!r:.200})"
                sweep.odd.skip(records, fresh[key], page_number, why)
                continue
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

    def _read_page(
        self, sweep: _Sweep, records: Sequence[Record], mark_seen: bool, page_number: int
    ) -> tuple[Page, dict[str, int]]:
        """The page's usable records (:mod:`watcher.poll.intake`) and their stored fingerprints.

        Also moves the poll's watermark candidate (never past now + MAX_CLOCK_SKEW). In
        a full sweep, a key an earlier page already had is dropped: the copy read first
        was compared and kept.
        """
        name = sweep.source.name
        found = read_records(
            records,
            sweep.odd,
            modified_field=sweep.source.modified_field,
            top=sweep.max_modified,
            ceiling=format_utc(self.clock.now() + MAX_CLOCK_SKEW),
            page=page_number,
        )
        sweep.max_modified = found.top
        if mark_seen:
            sweep.seen_pages += 1
            again = self.store.seen_mark(name, list(found.records), sweep.seen_pages)
            for key in again:
                del found.records[key], found.prints[key]
            sweep.odd.duplicates(again, page_number)
        stored = self.store.fingerprints(name, list(found.records))
        if found.repeated:
            keep_one(records, found, sweep.odd, stored=stored, page=page_number)
        return found, stored

    def _compare(
        self, sweep: _Sweep, key: str, raw: Record, stored: tuple[Record, int] | None
    ) -> tuple[Record, Change | Touch | None]:
        """Normalize ``raw`` and compare it with the stored record, under today's rules.

        The stored record is normalized again, so a change of the rules (a new
        ``date_fields`` entry, non-finite numbers now null) is never reported as a
        change of the data. Fields that are in only one of this poll's select and the
        select the snapshot was taken with are refreshed silently.
        """
        date_fields = sweep.source.date_fields
        after = normalize_record(raw, date_fields)
        if stored is None:
            return after, compare(key, None, after)
        body, set_id = stored
        ignore, reselected = self._ignored(sweep, set_id)
        if reselected:
            sweep.result.reselected += 1
        return after, compare(key, normalize_record(body, date_fields), after, ignore)

    def _ignored(self, sweep: _Sweep, set_id: int) -> tuple[frozenset[str], bool]:
        """Fields not compared for a snapshot taken with field set ``set_id``."""
        known = sweep.ignores.get(set_id)
        if known is not None:
            return known
        ignore = frozenset(sweep.source.ignore_fields)
        old = sweep.stored_sets.get(set_id)
        reselected = old is not None and old != sweep.fields
        if old is not None and reselected:
            ignore |= old ^ sweep.fields
            result = sweep.result
            result.fields_added = sorted({*result.fields_added, *(sweep.fields - old)})
            result.fields_removed = sorted({*result.fields_removed, *(old - sweep.fields)})
        sweep.ignores[set_id] = (ignore, reselected)
        return ignore, reselected

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
        """Route the page's events (rules matched here, not in the store), then write
        events, deliveries and snapshot changes in one transaction."""
        if sweep.result.dry_run:
            return
        if self.matcher is not None and page.events:
            page.route(self.matcher)
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
                # Every sweep marks what it saw, the baseline too: a key read twice is
                # noticed whatever the stored state.
                page = self._process(
                    sweep, fetched.records, mark_seen=True, page_number=fetched.number
                )
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
        # A sweep read everything there was when it started: the watermark becomes
        # no later than that start, even if an earlier poll had put it later.
        mark = min(sweep.max_modified or started_at, started_at)
        if state.watermark is not None:
            mark = min(max(mark, state.watermark), started_at)
        if mark != state.watermark:
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
                self.store.seen_add(source.name, undecided)
        confirmed = self.store.missing_collect(source.name)
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
            found_keys = {key_of(r, source.key) for r in found}
            wanted = set(remaining)
            fresh = [r for r in found if key_of(r, source.key) in wanted]
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

    def _hold(self, sweep: _Sweep, confirmed: int, total: int, reason: str) -> None:
        source, result = sweep.source, sweep.result
        result.held = confirmed
        result.held_reason = reason
        result.outcome = "held"
        _log.warning(
            "poll.delete_held",
            source=source.name,
            poll_id=result.poll_id,
            held=confirmed,
            total=total,
            reason=reason,
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
                    reason=reason,
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
        if watermark > format_utc(self.clock.now() + MAX_CLOCK_SKEW):
            watermark = self._future_watermark(sweep, watermark)
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

    def _future_watermark(self, sweep: _Sweep, watermark: str) -> str:
        """A watermark later than now (stored by an older version, or a clock that
        jumped back): start again from the last full sweep, which read everything."""
        source, result = sweep.source, sweep.result
        state = self.store.state(source.name)
        now = format_utc(self.clock.now())
        mark = min(state.last_full_at or state.baseline_at or now, now)
        _log.warning(
            "poll.watermark_reset",
            source=source.name,
            poll_id=result.poll_id,
            watermark=watermark,
            reset_to=mark,
            note="the watermark was later than now; reading again from the last full sweep",
        )
        self._commit(sweep, PageCommit(state={"watermark": mark}, poll_id=result.poll_id))
        return mark

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
