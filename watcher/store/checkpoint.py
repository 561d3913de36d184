"""The WAL copied into the database file on a thread of its own.

SQLite appends every commit to the write-ahead log; a *checkpoint* copies the logged
pages into the database file. Left to the committing connection, a checkpoint runs
inside a commit once the log passes ``wal_autocheckpoint`` pages (the event loop
stops for it: a third of a second for 80 MB), and the last connection to close copies
what is left (a one-shot ``watcher poll`` waits for that before it exits).

:class:`Checkpointer` does that copying on a second connection in a background
thread, every :data:`CHECKPOINT_EVERY` commits: SQLite releases the GIL while it
copies, so the work goes to another core while the poll goes on parsing and
comparing pages (a 1%-changed sweep of 200,000 records took a sixth less time). A
``PASSIVE`` checkpoint never blocks a writer or a reader; what it cannot copy yet
(a reader still on an older snapshot) is copied by a later one or at close. The
committing connection keeps its own automatic checkpoint as a backstop, so a
background checkpoint that fails (it is logged, once per message) costs time, never
data: SQLite's checkpoints are crash-safe wherever the process is killed.
"""

from __future__ import annotations

import sqlite3
import threading
from urllib.request import pathname2url

from watcher.logging import get_logger

#: Commits between two background checkpoints: a sweep's 40 pages of 5000 records
#: make about five, and the final one (at close) copies at most this many commits.
CHECKPOINT_EVERY = 8
#: How long the checkpoint connection waits for a lock before giving that round up.
BUSY_TIMEOUT_MS = 1000

_log = get_logger("watcher.store")


class Checkpointer:
    """Background ``PASSIVE`` checkpoints of one database file.

    :meth:`committed` is called after each commit; every ``every`` calls it wakes the
    thread (started on first use, so a store that commits little never starts one).
    :meth:`close` stops and joins it; :meth:`flush` runs one checkpoint and waits for
    it (tests). Not for in-memory databases (they have no WAL).
    """

    def __init__(self, path: str, *, every: int = CHECKPOINT_EVERY) -> None:
        self.path = path
        self.every = every
        #: (busy, frames in the log, frames copied) of the last round; None before one.
        self.last: tuple[int, int, int] | None = None
        self._commits = 0
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._rounds = 0
        self._stopping = False  # close() was called
        self._ended = False  # the thread is gone (closed, or its connection failed)
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()

    def committed(self) -> None:
        self._commits += 1
        if self._commits % self.every == 0:
            self._start().set()

    def flush(self) -> None:
        """Run one checkpoint now and wait until it is done."""
        with self._done:
            target = self._rounds + 1
            self._start().set()
            self._done.wait_for(lambda: self._rounds >= target or self._ended)

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        thread.join()

    def _start(self) -> threading.Event:
        if self._thread is None and not (self._stopping or self._ended):
            self._thread = threading.Thread(
                target=self._run, name="watcher-checkpoint", daemon=True
            )
            self._thread.start()
        return self._wake

    def _run(self) -> None:
        try:
            # mode=rw: never create the file (one deleted behind the store stays gone,
            # for Store.check_file to report).
            uri = f"file:{pathname2url(self.path)}?mode=rw"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            self._warn(exc)
            self._finish_round(ended=True)
            return
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous = NORMAL")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.last = (int(row[0]), int(row[1]), int(row[2]))
                except sqlite3.Error as exc:
                    self._warn(exc)
                self._finish_round()
        except sqlite3.Error as exc:
            self._warn(exc)
        finally:
            conn.close()
            self._finish_round(ended=True)

    def _finish_round(self, *, ended: bool = False) -> None:
        with self._done:
            self._rounds += 1
            self._ended = self._ended or ended
            self._done.notify_all()

    def _warn(self, exc: sqlite3.Error) -> None:
        text = str(exc)
        if text in self._warned:
            return
        self._warned.add(text)
        _log.warning(
            "store.checkpoint_failed",
            error=text,
            note="the WAL is copied at the next checkpoint or at close; nothing is lost",
        )
