"""The store: one connection, one :meth:`Store.commit` per unit of work.

Each table's statements live in the module that owns it (:mod:`~watcher.store.snapshots`,
:mod:`~watcher.store.events`, :mod:`~watcher.store.deliveries`,
:mod:`~watcher.store.runs`, :mod:`~watcher.store.state`; the outbox reads and updates
``deliveries`` in :mod:`~watcher.store.outbox`); :class:`Store` puts the reads
together on one connection and writes a commit in one transaction.

:class:`Store` owns one SQLite connection (not thread-safe; one per task). The
poll engine reads stored fingerprints page by page, marks the keys it saw in a
connection-private ``temp`` table (memory stays bounded: SQLite spills it to
disk), and hands each page's outcome to :meth:`Store.commit`, which writes the
snapshot changes, the events (with their strictly increasing ``sequence``) and
the deliveries the engine routed for them (:attr:`PageCommit.routes`), in one
transaction. The store matches no rule: it only writes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from watcher.clock import Clock, SystemClock
from watcher.core.events import CloudEvent
from watcher.core.normalize import Record
from watcher.dates import format_utc
from watcher.errors import StoreError
from watcher.store.checkpoint import Checkpointer
from watcher.store.db import migrate, open_database, transaction, translate_errors
from watcher.store.deliveries import Route
from watcher.store.events import Events, StoredEvent, event_text, insert_events
from watcher.store.runs import Polls, add_poll_counts
from watcher.store.snapshots import Snapshots, write_snapshots
from watcher.store.state import SourceState, States, write_state
from watcher.store.sweep_keys import SweepKeys
from watcher.store.sweep_pages import SweepPage, SweepPages, drop_hints, write_sweep_page

__all__ = ["PageCommit", "SourceState", "Store", "StoredEvent", "event_text"]


#: A snapshot write: key, fingerprint, the record (or its JSON text as received, stored
#: as it is).
Write = tuple[str, int, "Record | str"]


@dataclass
class PageCommit:
    """Everything one unit of work changes, committed atomically by :meth:`Store.commit`."""

    writes: list[Write] = field(default_factory=list)
    field_set: int | None = None  # the select the writes were read with (Store.field_set)
    deletes: list[str] = field(default_factory=list)
    events: list[CloudEvent] = field(default_factory=list)  # no sequence yet
    # The (rule, sink) pairs each event is delivered to, in the order of ``events``
    # (the engine's matcher fills it; missing entries queue nothing).
    routes: list[Sequence[Route]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # source_state columns to set
    poll_id: str | None = None
    poll_counts: dict[str, int] = field(default_factory=dict)  # added to the poll row
    sweep_page: SweepPage | None = None  # a full sweep's window, for the next sweep

    def route(self, matcher: Callable[[CloudEvent], Sequence[Route]]) -> PageCommit:
        """Fill :attr:`routes` from ``matcher`` (event -> (rule, sink) pairs); returns self."""
        self.routes = [matcher(event) for event in self.events]
        return self


class Store(Snapshots, SweepKeys, SweepPages, Events, Polls, States):
    """Snapshots, events, polls and per-source state in one SQLite database: one
    connection, each table's statements in its own module."""

    def __init__(self, db: Database, *, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()
        migrate(db, self.clock.now)
        self.conn: sqlite3.Connection = db.conn
        self._file = self._identify_file()
        #: Copies the WAL into the file on a thread of its own (None for a memory
        #: database); :meth:`close` stops it.
        self.checkpointer = Checkpointer(self._file[0]) if self._file else None

    @classmethod
    def open(cls, path: str | Path, *, clock: Clock | None = None) -> Store:
        return cls(open_database(path), clock=clock)

    def _identify_file(self) -> tuple[str, int, int] | None:
        with translate_errors("read database path"):
            row = self.conn.execute(
                "SELECT file FROM pragma_database_list WHERE name = 'main'"
            ).fetchone()
        if not row or not row[0]:
            return None  # in memory
        st = os.stat(row[0])
        return (row[0], st.st_dev, st.st_ino)

    def check_file(self) -> None:
        """Raise :class:`StoreError` when the database file was deleted or replaced.

        SQLite would keep writing to the unlinked file, and everything committed
        from then on would vanish at the next start; fail loudly instead.
        """
        if self._file is None:
            return
        path, dev, ino = self._file
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != (dev, ino):
            raise StoreError(
                f"store: the database file {path!r} was deleted or replaced while watcher "
                "had it open; nothing more is written to it: restore it or restart watcher"
            )

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()
        with translate_errors("close"):
            self.conn.close()

    # -- commits ---------------------------------------------------------------

    def commit(self, source: str, page: PageCommit) -> list[CloudEvent]:
        """Write ``page`` atomically; return its events as stored (with ``sequence``)."""
        self.check_file()
        now = format_utc(self.clock.now())
        conn = self.conn
        committed: list[CloudEvent] = []
        with transaction(conn, f"commit changes of source {source!r}"):
            write_snapshots(
                conn, source, page.writes, page.deletes, field_set=page.field_set, now=now
            )
            if page.writes or page.deletes or page.sweep_page is not None:
                keys = [key for key, _, _ in page.writes] + page.deletes
                drop_hints(conn, source, keys, page.sweep_page)
            if page.events:
                committed = insert_events(
                    conn,
                    source,
                    page.events,
                    routes=page.routes,
                    poll_id=page.poll_id,
                    now=self.clock.now(),
                )
            if page.state:
                write_state(conn, source, page.state)
            if page.poll_id and page.poll_counts:
                add_poll_counts(conn, page.poll_id, page.poll_counts)
            if page.sweep_page is not None:
                write_sweep_page(conn, source, page.sweep_page)
        if self.checkpointer is not None:
            self.checkpointer.committed()
        return committed
