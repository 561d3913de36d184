"""Table ``polls``: the poll history (one row per poll, its counts and outcome)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

from watcher.clock import Clock
from watcher.dates import format_utc
from watcher.store.db import transaction, translate_errors

# The polls columns that hold counts: the allow-list for their UPDATEs.
POLL_COUNTS = frozenset({"pages", "records", "api_calls", "created", "updated", "deleted"})


def add_poll_counts(conn: sqlite3.Connection, poll_id: str, counts: Mapping[str, int]) -> None:
    """Add ``counts`` to a poll row (in the caller's transaction)."""
    sets = ", ".join(f"{name} = {name} + ?" for name in counts if name in POLL_COUNTS)
    values = [v for name, v in counts.items() if name in POLL_COUNTS]
    if sets:
        conn.execute(f"UPDATE polls SET {sets} WHERE id = ?", (*values, poll_id))  # noqa: S608 - column names come from a fixed allow-list


class Polls:
    """The poll history on the store's connection."""

    conn: sqlite3.Connection
    clock: Clock
    check_file: Callable[[], None]

    def start_poll(self, poll_id: str, source: str, mode: str, trigger: str) -> None:
        self.check_file()
        with transaction(self.conn, "record poll start"):
            self.conn.execute(
                "INSERT INTO polls (id, source, mode, trigger, started_at) VALUES (?, ?, ?, ?, ?)",
                (poll_id, source, mode, trigger, format_utc(self.clock.now())),
            )

    def finish_poll(
        self,
        poll_id: str,
        *,
        outcome: str,
        error: str | None = None,
        counts: Mapping[str, int] | None = None,
        mode: str | None = None,
    ) -> None:
        with transaction(self.conn, "record poll end"):
            for name, value in (counts or {}).items():
                if name in POLL_COUNTS:
                    self.conn.execute(f"UPDATE polls SET {name} = ? WHERE id = ?", (value, poll_id))  # noqa: S608 - allow-listed column
            self.conn.execute(
                "UPDATE polls SET finished_at = ?, outcome = ?, error = ?, "
                "mode = COALESCE(?, mode) WHERE id = ?",
                (format_utc(self.clock.now()), outcome, error, mode, poll_id),
            )

    def polls(self, source: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        sql = "SELECT * FROM polls"
        args: list[Any] = []
        if source:
            sql += " WHERE source = ?"
            args.append(source)
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        args.append(limit)
        with translate_errors("read polls"):
            cur = self.conn.execute(sql, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def mark_interrupted(self, source: str | None = None) -> int:
        """Close poll rows left ``running`` by a process that died (call at start-up)."""
        sql = "UPDATE polls SET outcome = 'interrupted', finished_at = ? WHERE outcome = 'running'"
        args: list[Any] = [format_utc(self.clock.now())]
        if source:
            sql += " AND source = ?"
            args.append(source)
        with transaction(self.conn, "close interrupted polls"):
            return int(self.conn.execute(sql, args).rowcount)
