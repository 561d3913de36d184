"""Delete confirmation (reads by key, sentinels) and the mass-delete hold."""

from __future__ import annotations

from watcher.core.diff import Change, key_of
from watcher.core.events import delete_held_event, uuid7
from watcher.core.normalize import normalize_record
from watcher.dates import format_utc
from watcher.gainsight.budget import Priority
from watcher.gainsight.routes import key_batch_of
from watcher.poll.intake import RECORD_ERRORS
from watcher.poll.pages import PageWork
from watcher.poll.work import (
    CONFIRM_EMPTY_READS,
    MAX_CONFIRM_READS,
    Sweep,
    log,
)
from watcher.store.store import PageCommit


class Confirm(PageWork):
    """Deletes only once reads by key agree a key is gone; mass deletes held."""

    async def _read_absent(
        self, sweep: Sweep, keys: list[str], *, mark_seen: bool = False
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
            result.api_calls += max(1, -(-len(ask) // key_batch_of(source)))
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
            log.warning(
                "poll.delete_unconfirmed",
                source=source.name,
                keys=len(remaining),
                reads=reads,
                note="by-key reads disagreed; these keys are checked again next sweep",
            )
        return []

    def _delete(self, sweep: Sweep, keys: list[str]) -> None:
        befores = self.store.records(sweep.source.name, keys)
        page = PageCommit(poll_id=sweep.result.poll_id)
        now = self.clock.now()
        for key in keys:
            stored = befores.get(key)
            if stored is None:
                continue  # deleted by an earlier, interrupted run: its event exists
            try:  # stored as received: the event shows it as a poll compares it
                before = normalize_record(stored, sweep.source.date_fields)
            except RECORD_ERRORS:
                before = stored
            page.deletes.append(key)
            page.events.append(self._event(sweep, Change("deleted", key, before, None), now))
        sweep.result.deleted += len(page.deletes)
        self._commit(sweep, page)

    def _hold(self, sweep: Sweep, confirmed: int, total: int, reason: str) -> None:
        source, result = sweep.source, sweep.result
        result.held = confirmed
        result.held_reason = reason
        result.outcome = "held"
        log.warning(
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

    def _clear_hold(self, sweep: Sweep) -> None:
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
