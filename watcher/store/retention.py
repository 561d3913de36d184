"""Retention: delete what ``[store] retain_*`` no longer keeps, and give the space back.

What goes, oldest first, in small transactions (the poller keeps writing meanwhile):

- deliveries ``delivered`` (by ``delivered_at``) or ``suppressed`` older than
  ``retain_delivered``; ``dead`` ones older than ``retain_dead`` (from when they were
  queued: a dead delivery stays retryable that long);
- events older than ``retain_events`` that no delivery still needs (a pending or
  kept dead delivery keeps its event, so a retry always has the body to send);
- polls finished longer than ``retain_polls`` ago.

Deleted rows must not live on in the file: the purge connection zeroes what it
deletes (``secure_delete``), the WAL is checkpointed and truncated, and free pages
are returned to the file system (``incremental_vacuum``; a database created before
retention existed is converted once with ``VACUUM``). The event cursor never goes
back: ``sequence`` is ``AUTOINCREMENT``, so purged numbers are not reused.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlite_utils import Database

from watcher.dates import format_utc
from watcher.durations import parse_duration
from watcher.errors import StoreError
from watcher.store.db import transaction, translate_errors

if TYPE_CHECKING:
    from watcher.config import StoreConfig

#: Rows deleted per transaction: short write locks while polls run.
BATCH = 2000
# A WAL truncation that meets another checkpoint is tried again this often, this far apart.
TRUNCATE_TRIES = 50
TRUNCATE_WAIT_S = 0.1


@dataclass(frozen=True)
class Retention:
    """Seconds each kind of row is kept (from ``[store]``)."""

    events_s: float
    delivered_s: float
    polls_s: float
    dead_s: float

    @classmethod
    def from_config(cls, store: StoreConfig) -> Retention:
        return cls(
            events_s=parse_duration(store.retain_events),
            delivered_s=parse_duration(store.retain_delivered),
            polls_s=parse_duration(store.retain_polls),
            dead_s=parse_duration(store.retain_dead),
        )


@dataclass(frozen=True)
class PurgeResult:
    """Rows deleted (or, with ``dry_run``, that would be) and bytes given back."""

    events: int = 0
    delivered: int = 0
    dead: int = 0
    polls: int = 0
    freed_bytes: int = 0
    dry_run: bool = False

    @property
    def rows(self) -> int:
        return self.events + self.delivered + self.dead + self.polls


#: kind -> (table, key column, WHERE clause with one ``?`` cutoff); deliveries first,
#: so the events they held can go in the same purge.
_TARGETS: dict[str, tuple[str, str, str]] = {
    "delivered": (
        "deliveries",
        "id",
        "status IN ('delivered', 'suppressed') AND COALESCE(delivered_at, created_at) < ?",
    ),
    "dead": ("deliveries", "id", "status = 'dead' AND created_at < ?"),
    "events": (
        "events",
        "sequence",
        "time < ? AND NOT EXISTS "
        "(SELECT 1 FROM deliveries d WHERE d.event_sequence = events.sequence)",
    ),
    "polls": ("polls", "id", "outcome != 'running' AND COALESCE(finished_at, started_at) < ?"),
}


def _cutoffs(retention: Retention, now: datetime) -> dict[str, str]:
    def before(seconds: float) -> str:
        return format_utc(now - timedelta(seconds=seconds))

    return {
        "delivered": before(retention.delivered_s),
        "dead": before(retention.dead_s),
        "events": before(retention.events_s),
        "polls": before(retention.polls_s),
    }


def purge(
    db: Database,
    retention: Retention,
    now: datetime,
    *,
    dry_run: bool = False,
    stop: Callable[[], bool] = lambda: False,
) -> PurgeResult:
    """Apply ``retention`` at ``now``; with ``dry_run`` only count. ``stop()`` turning
    true (the daemon is stopping) ends it between batches; the next purge goes on."""
    conn = db.conn
    targets, cutoffs = _TARGETS, _cutoffs(retention, now)
    counts: dict[str, int] = {}
    with translate_errors("purge"):
        conn.execute("PRAGMA secure_delete = ON")
        for kind, (table, key, where) in targets.items():  # deliveries before events
            if dry_run:
                counts[kind] = _count(conn, kind, cutoffs)
                continue
            total = 0
            while True:
                with transaction(conn, f"purge {kind}"):
                    deleted = conn.execute(
                        f"DELETE FROM {table} WHERE {key} IN "  # noqa: S608 - fixed names above
                        f"(SELECT {key} FROM {table} WHERE {where} LIMIT {BATCH})",
                        (cutoffs[kind],),
                    ).rowcount
                total += deleted
                if deleted < BATCH or stop():
                    break
            counts[kind] = total
            if stop():
                break
    freed = 0 if dry_run or stop() else give_back(db)
    return PurgeResult(freed_bytes=freed, dry_run=dry_run, **counts)


def _count(conn: sqlite3.Connection, kind: str, cutoffs: dict[str, str]) -> int:
    table, _, where = _TARGETS[kind]
    cutoff = cutoffs[kind]
    if kind != "events":
        row = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", (cutoff,)).fetchone()  # noqa: S608 - fixed names
        return int(row[0])
    # A dry run deletes no deliveries: count the events whose deliveries would all go.
    row = conn.execute(
        "SELECT COUNT(*) FROM events e WHERE e.time < ? AND NOT EXISTS (SELECT 1 FROM "
        "deliveries d WHERE d.event_sequence = e.sequence AND NOT ("
        "(d.status IN ('delivered', 'suppressed') AND COALESCE(d.delivered_at, d.created_at) < ?)"
        " OR (d.status = 'dead' AND d.created_at < ?)))",
        (cutoff, cutoffs["delivered"], cutoffs["dead"]),
    ).fetchone()
    return int(row[0])


def give_back(db: Database) -> int:
    """Return free pages to the file system and empty the WAL; bytes the file shrank."""
    conn = db.conn
    with translate_errors("give space back"):
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        before = int(conn.execute("PRAGMA page_count").fetchone()[0])
        empty_wal(conn)
        if int(conn.execute("PRAGMA freelist_count").fetchone()[0]):
            if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:
                # executescript steps it to the end (execute() frees one page per step)
                conn.executescript("PRAGMA incremental_vacuum;")
            else:  # a file from before retention: convert it once
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                try:
                    conn.execute("VACUUM")
                except sqlite3.OperationalError as exc:
                    raise StoreError(
                        f"store: VACUUM could not run now ({exc}); retry later"
                    ) from exc
        empty_wal(conn)
        after = int(conn.execute("PRAGMA page_count").fetchone()[0])
    return max(0, before - after) * page_size


def empty_wal(
    conn: sqlite3.Connection, *, tries: int = TRUNCATE_TRIES, wait_s: float = TRUNCATE_WAIT_S
) -> bool:
    """Copy the whole WAL into the file and truncate it to zero bytes; whether it was.

    SQLite answers busy at once, without waiting, while another connection checkpoints
    (the store's background checkpointer, :mod:`watcher.store.checkpoint`, for a
    fraction of a second): try again a few times before leaving it to the next purge.
    """
    for attempt in range(tries):
        busy = int(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
        if not busy:
            return True
        if attempt + 1 < tries:
            time.sleep(wait_s)
    return False


def purge_file(
    path: str | Path,
    store: StoreConfig,
    now: datetime,
    *,
    dry_run: bool = False,
    stop: Callable[[], bool] = lambda: False,
) -> PurgeResult:
    """Open the store file at ``path``, apply ``[store]`` retention, close it."""
    from watcher.store.db import migrate, open_database

    db = open_database(path)
    try:
        migrate(db, lambda: now)
        return purge(db, Retention.from_config(store), now, dry_run=dry_run, stop=stop)
    finally:
        db.conn.close()
