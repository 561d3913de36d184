"""Delete-log reads: the deletes Gainsight reports since the last read, each confirmed
by a read by key before its ``deleted`` event.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from watcher.dates import format_utc, parse_iso
from watcher.gainsight.budget import Priority
from watcher.poll.confirm import Confirm
from watcher.poll.work import (
    DELETE_LOG_RETENTION,
    Sweep,
)
from watcher.store.store import PageCommit


class DeleteLog(Confirm):
    """Delete-log reads: Gainsight's delete feed, each key confirmed gone."""

    async def _delete_log(self, sweep: Sweep) -> None:
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
