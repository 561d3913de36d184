"""Table ``daemon_schedule``: when each (source, mode) last started and finished, so a
restarted daemon knows which slots it missed (created by the store's migration 2)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from watcher.store.db import migrate, open_database
from watcher.store.view import connect


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


class ScheduleState:
    """Last start per (source, mode), persisted in the store's file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def migrate(self) -> None:
        """Bring the file to the store's newest schema (creates ``daemon_schedule``)."""
        db = open_database(self.path)
        try:
            migrate(db, lambda: datetime.now(UTC))
        finally:
            db.conn.close()

    def load(self) -> dict[tuple[str, str], datetime]:
        with connect(self.path, readonly=False) as conn:
            rows = conn.execute("SELECT source, mode, last_start FROM daemon_schedule").fetchall()
        return {(s, m): datetime.fromisoformat(t) for s, m, t in rows}

    def record(
        self, source: str, mode: str, start: datetime, finish: datetime, outcome: str
    ) -> None:
        with connect(self.path, readonly=False) as conn:
            conn.execute(
                "INSERT INTO daemon_schedule (source, mode, last_start, last_finish, outcome) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, mode) DO UPDATE SET "
                "last_start = excluded.last_start, last_finish = excluded.last_finish, "
                "outcome = excluded.outcome",
                (source, mode, _iso(start), _iso(finish), outcome),
            )

    def last_outcomes(self) -> dict[str, tuple[datetime, str]]:
        """Per source: the most recent finished poll (finish time, outcome)."""
        with connect(self.path, readonly=False) as conn:
            rows = conn.execute(
                "SELECT source, last_finish, outcome FROM daemon_schedule "
                "WHERE last_finish IS NOT NULL ORDER BY last_finish"
            ).fetchall()
        return {s: (datetime.fromisoformat(f), o) for s, f, o in rows}
