"""Read-only views of the store for the daemon: the event feed, the event counts
``/metrics`` reports, and the outbox figures (:class:`StoreStats`).

Each call opens its own short connection (read-only where it only reads: WAL lets it
run beside the writer) and translates SQLite errors to :class:`StoreError`.
"""

# SQL text only interpolates "?" placeholders
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watcher.core.normalize import normalize_record
from watcher.errors import StoreError
from watcher.store.db import classify


@dataclass(frozen=True)
class StoreStats:
    """What the store says at scrape time."""

    outbox_depth: int = 0
    oldest_pending_age_s: float = 0.0
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)  # (sink, status) -> n


@contextmanager
def connect(path: Path, *, readonly: bool) -> Iterator[sqlite3.Connection]:
    try:
        if readonly:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        else:
            conn = sqlite3.connect(path, timeout=10)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store {str(path)!r} ({exc})") from None
    try:
        with conn:
            yield conn
    except sqlite3.Error as exc:  # locked, full, corrupt: one translation for all
        raise classify(exc, f"daemon state in {str(path)!r}") from None
    finally:
        conn.close()


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class FeedPage:
    events: list[dict[str, Any]]
    next_after: int


class StoreView:
    """Read-only queries over the store's documented tables."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _tables(self, conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {r[0] for r in rows}

    def inode(self) -> int | None:
        """The database file's inode (``None``: no file), to notice a file replaced or
        deleted under the daemon (SQLite would go on writing to the unlinked one)."""
        try:
            return self.path.stat().st_ino
        except OSError:
            return None

    def is_open(self) -> bool:
        """The store file exists and answers a query."""
        if not self.path.exists():
            return False
        try:
            with connect(self.path, readonly=True) as conn:
                conn.execute("SELECT 1").fetchone()
        except StoreError:
            return False
        return True

    def max_sequence(self) -> int:
        if not self.path.exists():
            return 0
        with connect(self.path, readonly=True) as conn:
            if "events" not in self._tables(conn):
                return 0
            row = conn.execute("SELECT MAX(sequence) FROM events").fetchone()
        return int(row[0] or 0)

    def event_types_after(self, after: int) -> tuple[dict[str, int], int]:
        """Counts by type of events committed after ``after``, and the new maximum."""
        if not self.path.exists():
            return {}, after
        with connect(self.path, readonly=True) as conn:
            if "events" not in self._tables(conn):
                return {}, after
            rows = conn.execute(
                "SELECT type, COUNT(*), MAX(sequence) FROM events WHERE sequence > ? GROUP BY type",
                (after,),
            ).fetchall()
        top = max([after, *(int(r[2]) for r in rows)])
        return {str(r[0]): int(r[1]) for r in rows}, top

    def feed(
        self, after: int, limit: int, source: str | None = None, type_: str | None = None
    ) -> FeedPage:
        """Events with ``sequence > after`` in sequence order, as CloudEvents.

        ``next_after`` is the last event's sequence; when the page is not full it is
        the newest sequence looked at, so a filtered reader skips what did not match.
        """
        if not self.path.exists():
            return FeedPage([], after)
        sql = "SELECT sequence, body FROM events WHERE sequence > ? AND sequence <= ?"
        params: list[Any] = [after]
        if source:
            # The column holds the source name; accept the CloudEvent URI's last segment too.
            sql += " AND (source = ? OR source LIKE ?)"
            params += [source, f"%/{source}"]
        if type_:
            sql += " AND type = ?"
            params.append(type_)
        sql += " ORDER BY sequence LIMIT ?"
        params.append(limit)
        with connect(self.path, readonly=True) as conn:
            if "events" not in self._tables(conn):
                return FeedPage([], after)
            conn.execute("BEGIN")  # one snapshot for both reads
            top = int(conn.execute("SELECT MAX(sequence) FROM events").fetchone()[0] or 0)
            rows = conn.execute(sql, [params[0], top, *params[1:]]).fetchall()
        events = []
        for seq, body in rows:
            event = json.loads(body)
            event.setdefault("sequence", int(seq))
            events.append(event)
        if len(rows) == limit:
            return FeedPage(events, int(rows[-1][0]))
        return FeedPage(events, max(after, top))

    def stats(self, now: datetime) -> StoreStats | None:
        """Outbox depth, oldest pending age and deliveries by sink/status."""
        if not self.path.exists():
            return None
        try:
            with connect(self.path, readonly=True) as conn:
                if "deliveries" not in self._tables(conn):
                    return StoreStats()
                counts = conn.execute(
                    "SELECT sink, status, COUNT(*) FROM deliveries GROUP BY sink, status"
                ).fetchall()
                oldest = conn.execute(
                    "SELECT MIN(created_at) FROM deliveries WHERE status = 'pending'"
                ).fetchone()[0]
        except StoreError:
            return None
        by = {(str(s), str(st)): int(n) for s, st, n in counts}
        depth = sum(n for (_, st), n in by.items() if st == "pending")
        age = 0.0
        if oldest:
            created = _parse_time(str(oldest))
            if created is not None:
                age = max(0.0, (now - created).total_seconds())
        return StoreStats(outbox_depth=depth, oldest_pending_age_s=age, deliveries=by)


def _parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except ValueError:
            return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StoreDump:
    """Everything a verdict compares (the crash soak): small stores only."""

    snapshots: dict[str, dict[str, Any]]  # source -> key -> record
    events: list[dict[str, Any]]  # CloudEvents in sequence order
    outbox: list[tuple[str, str]]  # (event id, status) per delivery
    baseline: dict[str, str | None]  # source -> baseline_at


def dump(path: str | Path) -> StoreDump:
    """Snapshots per source, events, outbox rows and baselines, read in one go."""
    with connect(Path(path), readonly=True) as conn:
        snaps: dict[str, dict[str, Any]] = {}
        for source, key, body in conn.execute("SELECT source, key, body FROM snapshots"):
            # Stored as received: normalized as a poll compares it (dates by field name).
            snaps.setdefault(source, {})[key] = normalize_record(json.loads(body))
        events = []
        for seq, body in conn.execute("SELECT sequence, body FROM events ORDER BY sequence"):
            event = json.loads(body)
            event.setdefault("sequence", seq)
            events.append(event)
        outbox = [
            (str(a), str(b)) for a, b in conn.execute("SELECT event_id, status FROM deliveries")
        ]
        rows = conn.execute("SELECT source, baseline_at FROM source_state")
        baseline = {str(s): b for s, b in rows}
    return StoreDump(snaps, events, outbox, baseline)


def activity(path: str | Path) -> tuple[int, int]:
    """(polls still running, deliveries pending): roughly what the daemon is doing."""
    with connect(Path(path), readonly=True) as conn:
        running = conn.execute("SELECT count(*) FROM polls WHERE outcome = 'running'")
        polling = int(running.fetchone()[0])
        pending = conn.execute("SELECT count(*) FROM deliveries WHERE status = 'pending'")
        return polling, int(pending.fetchone()[0])


def integrity(path: str | Path) -> str:
    """``PRAGMA integrity_check``: ``"ok"`` or what is wrong."""
    with connect(Path(path), readonly=True) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
