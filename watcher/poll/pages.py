"""One batch of records compared with the stored state and committed, with its
events routed to their deliveries (shared by every kind of poll).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from itertools import compress
from operator import ne

from watcher.clock import Clock, SystemClock
from watcher.core.diff import Change, Touch, compare
from watcher.core.events import CloudEvent, change_event, uuid7
from watcher.core.normalize import Record, normalize_record, normalize_records
from watcher.dates import format_utc
from watcher.gainsight.budget import Priority
from watcher.gainsight.query import Condition, select_of
from watcher.poll.intake import RECORD_ERRORS, Page, keep_one, read_records
from watcher.poll.paging import range_pages
from watcher.poll.source import PageLike, RecordSource
from watcher.poll.work import (
    MAX_CLOCK_SKEW,
    Hook,
    Sweep,
    no_hook,
)
from watcher.rules.match import Router
from watcher.store.store import PageCommit, Store
from watcher.store.sweep_pages import SweepPage, keys_digest, pack_fingerprints


class PageWork:
    """The engine's shared step: one batch of records -> one routed commit."""

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
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.matcher = matcher
        # Called after each commit that queued deliveries (the daemon wakes its
        # dispatcher with it): page 1 of a long sweep is delivered while page 2 is read.
        self.on_commit = on_commit
        self.client = client
        self.host = host
        self.clock: Clock = clock or SystemClock()
        self._bits = random_bits or (lambda: secrets.randbits(74))
        self.hook = hook or no_hook
        self.confirm_batch = confirm_batch
        self.delete_batch = delete_batch
        self.max_kept_events = max_kept_events
        #: The full sweep running now, by source (the fast lane tells it what it wrote).
        self._sweeps: dict[str, Sweep] = {}

    def new_id(self) -> str:
        return uuid7(self.clock.now(), self._bits())

    def _prepare(self, sweep: Sweep) -> None:
        """The field set this poll reads with, and those the stored snapshots were taken with."""
        name = sweep.source.name
        sweep.fields = frozenset(select_of(sweep.source))
        sweep.field_set = self.store.field_set(name, sweep.fields, create=not sweep.result.dry_run)
        sweep.stored_sets = self.store.field_sets(name)

    def _process(
        self,
        sweep: Sweep,
        records: Sequence[Record],
        *,
        mark_seen: bool = False,
        page_number: int = 0,
    ) -> PageCommit:
        """Compare ``records`` with the stored state; build the commit (not yet written).

        The fast path: the fingerprint of each record *as received* (the client hands
        records over unnormalized) is compared with the stored one, so an unchanged
        record costs a hash and an index lookup. Only records whose fingerprint
        differs are normalized (:func:`watcher.core.normalize.normalize_record`, the
        one normalization) and compared field by field: a different spelling of the
        same values (epoch ms for ISO text), or a fingerprint an older version took of
        its client-normalized record, then refreshes the snapshot silently. The checks
        for odd data (a record without a usable key, a key read twice, a key that is
        not Unicode text) cost one test per page unless
        the page has one; such records are skipped or dropped with a warning, and
        the rest of the page goes on.
        """
        source = sweep.source
        result = sweep.result
        page = PageCommit(poll_id=result.poll_id, field_set=sweep.field_set)
        found, stored = self._read_page(sweep, records, mark_seen, page_number)
        prints = found.prints
        if stored is prints or stored == prints:  # the steady case: settled, or one C compare
            return page
        # New or changed, in page order.
        changed = list(compress(prints, map(ne, prints.values(), map(stored.get, prints))))
        befores = self.store.snapshot_rows(source.name, [k for k in changed if k in stored])
        if not (befores or sweep.emit_created or sweep.lane_deleted):
            # A silent baseline's page (nothing stored, no events): stored as received,
            # nothing normalized (nor parsed, when the client kept the bytes).
            fps = map(prints.__getitem__, changed)
            page.writes.extend(zip(changed, fps, found.stored_forms(changed), strict=True))
            result.created += len(changed)
            return page
        fresh = found.pick(changed)
        afters = self._normalized(sweep, changed, fresh)
        # The stored records too, a page's worth at a time (each alone if one fails).
        bodies = {key: row[0] for key, row in befores.items()}
        olds = self._normalized(sweep, list(bodies), bodies)
        now = self.clock.now()
        for key in changed:
            if key in sweep.lane_deleted and key not in stored:
                result.stale += 1  # the fast lane saw it deleted after this page was read
                sweep.window_page = None  # the window is not stored as read: no hint
                continue
            before = befores.get(key)
            try:
                after = afters.get(key) or normalize_record(fresh[key], sweep.source.date_fields)
                outcome = self._compare(sweep, key, after, before, olds.get(key))
            except RECORD_ERRORS as exc:
                why = f"not comparable ({exc!r:.200})"
                sweep.odd.skip(records, fresh[key], page_number, why)
                sweep.window_page = None
                continue
            if self._older(sweep, key, after, before):
                result.stale += 1  # read before a newer version was stored: no event, no write
                sweep.window_page = None
                continue
            page.writes.append((key, prints[key], fresh[key]))  # stored as received
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
        self, sweep: Sweep, records: Sequence[Record], mark_seen: bool, page_number: int
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
        stored = self._see(sweep, found, page_number) if mark_seen else None
        if stored is None:
            stored = self.store.fingerprints(name, list(found.prints))
        if found.repeated:
            if stored is found.prints:  # keep_one below changes found.prints
                stored = dict(stored)
            keep_one(records, found, sweep.odd, stored=stored, page=page_number)
        return found, stored

    def _see(self, sweep: Sweep, found: Page, page_number: int) -> dict[str, int] | None:
        """Mark a full sweep's page seen; its stored fingerprints if that read them.

        A sweep in key order (:attr:`Sweep.by_range`) reads the stored keys of the
        page's window in one range scan: those the page lacks are missing, the rest
        are its stored fingerprints. A page whose keys do not all sort after the last
        window (rows moved under offset paging, a tenant that sorts differently) turns
        the sweep over to the seen-set, which drops a key an earlier page already had.
        """
        name = sweep.source.name
        keys = found.prints.keys()
        sweep.seen_pages += 1
        if sweep.by_range and keys:
            if not sweep.paging:  # a read by key while confirming deletes: seen after all
                self.store.missing_drop(name, keys)
                return None
            if sweep.covered is None or min(keys) > sweep.covered:
                after = sweep.covered or ""
                key_digest = keys_digest(keys)
                packed = pack_fingerprints(found.prints.values())
                hint = sweep.hint
                stored, gone = None, 0
                if hint is not None and hint.after == after:  # the last sweep's row
                    stored = hint.fingerprints(found.prints, key_digest, packed)
                if stored is None:
                    stored, gone = self.store.window(name, found.prints, sweep.covered)
                last = max(keys)
                # A hint for the next sweep: the window as this page stores it, so not
                # when something is odd in the page, or stored keys of the window are
                # missing from it (they stay stored until the sweep's deletes), or the
                # reply has no digest to settle it by.
                if found.clean and not gone and sweep.reply_digest is not None:
                    sweep.window_page = SweepPage(
                        after,
                        last,
                        len(keys),
                        sum(found.prints.values()),
                        sweep.reply_digest,
                        found.latest,
                        key_digest,
                        packed,
                        sweep.read_version,
                    )
                sweep.covered = last
                return stored
            if sweep.covered is not None:
                self.store.seen_from_window(name, sweep.covered)
            sweep.by_range = False
        again = self.store.seen_mark(name, list(keys), sweep.seen_pages)
        for key in again:
            del found.records[key], found.prints[key]
        sweep.odd.duplicates(again, page_number)
        return None

    @staticmethod
    def _normalized(sweep: Sweep, keys: list[str], fresh: dict[str, Record]) -> dict[str, Record]:
        """The records of ``keys`` normalized (the one normalization of a received
        record), a page's worth at a time; empty when one of them cannot be (each is
        then normalized alone, and only that one skipped)."""
        try:
            records = normalize_records([fresh[k] for k in keys], sweep.source.date_fields)
        except RECORD_ERRORS:
            return {}
        return dict(zip(keys, records, strict=True))

    def _compare(
        self,
        sweep: Sweep,
        key: str,
        after: Record,
        stored: tuple[Record, int] | None,
        stored_normalized: Record | None = None,
    ) -> Change | Touch | None:
        """Compare the normalized record ``after`` with the stored one, under today's rules.

        The stored record is normalized again, so a change of the rules (a new
        ``date_fields`` entry, non-finite numbers now null) is never reported as a
        change of the data. Fields that are in only one of this poll's select and the
        select the snapshot was taken with are refreshed silently.
        """
        if stored is None:
            return compare(key, None, after)
        body, set_id = stored
        ignore, reselected = self._ignored(sweep, set_id)
        if reselected:
            sweep.result.reselected += 1
        if stored_normalized is None:
            stored_normalized = normalize_record(body, sweep.source.date_fields)
        return compare(key, stored_normalized, after, ignore)

    def _older(
        self, sweep: Sweep, key: str, after: Record, stored: tuple[Record, int] | None
    ) -> bool:
        """The sweep guard: ``after`` is older (modified field) than the stored record,
        i.e. read before another poll (the fast lane) stored a newer version.

        In a full sweep only a key the fast lane wrote while the sweep ran can be: any
        other stored version is older than the sweep's read, whatever its modified
        date says (a date in the future, later corrected, must not freeze a record)."""
        if stored is None:
            return False
        if sweep.result.mode == "full" and key not in sweep.lane_written:
            return False
        field_name = sweep.source.modified_field
        mine, theirs = after.get(field_name), stored[0].get(field_name)
        if mine is None or theirs is None:
            return False
        theirs = normalize_record({field_name: theirs}, sweep.source.date_fields)[field_name]
        return isinstance(mine, str) and isinstance(theirs, str) and mine < theirs

    def _ignored(self, sweep: Sweep, set_id: int) -> tuple[frozenset[str], bool]:
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

    def _event(self, sweep: Sweep, change: Change, now: datetime) -> CloudEvent:
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

    def _commit(self, sweep: Sweep, page: PageCommit) -> None:
        """Route the page's events (rules matched here, not in the store), then write
        events, deliveries and snapshot changes in one transaction."""
        if sweep.result.dry_run:
            return
        if self.matcher is not None and page.events:
            page.route(self.matcher)
        committed = self.store.commit(sweep.source.name, page)
        if self.on_commit is not None and any(page.routes):
            self.on_commit()
        running = self._sweeps.get(sweep.source.name)
        if running is not None and running is not sweep:  # the fast lane beside a sweep
            running.lane_written.update(key for key, _, _ in page.writes)
            running.lane_deleted.update(page.deletes)
        room = sweep.keep_events - len(sweep.result.events)
        if room > 0:
            sweep.result.events.extend(committed[:room])

    def _range_pages(
        self, sweep: Sweep, base: Sequence[Condition] = (), priority: Priority = Priority.LOW
    ) -> AsyncIterator[PageLike]:
        def probe(calls: int) -> None:
            sweep.result.api_calls += calls  # a probe's rows are read again in its parts
            self.hook("range_split")

        return range_pages(self.client, sweep.source, base=base, priority=priority, probe=probe)
