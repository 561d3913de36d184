"""Gainsight API usage per minute (table ``api_usage``): calls and 429 answers.

The daemon counts every response of its Gainsight client here, so ``watcher status``
can show the budget used this minute and today whether or not the daemon runs. Rows
are minute buckets (``YYYY-MM-DDTHH:MM``, UTC); rows older than two days are dropped
as new minutes begin.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path

from watcher.dates import format_utc
from watcher.store.db import translate_errors

KEEP = timedelta(days=2)


def minute_of(when: datetime) -> str:
    return format_utc(when)[:16]


class ApiUsage:
    """Counts responses into ``api_usage``; one connection, safe to call from threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._minute: str | None = None

    def record(self, when: datetime, status: int) -> None:
        """Count one response (a 429 also as rate limited) in ``when``'s minute."""
        minute = minute_of(when)
        with self._lock, translate_errors("count an API call"):
            if self._conn is None:
                self._conn = sqlite3.connect(self.path, timeout=5, check_same_thread=False)
                self._conn.isolation_level = None
            self._conn.execute(
                "INSERT INTO api_usage (minute, calls, rate_limited) VALUES (?, 1, ?) "
                "ON CONFLICT (minute) DO UPDATE SET calls = calls + 1, "
                "rate_limited = rate_limited + excluded.rate_limited",
                (minute, int(status == 429)),
            )
            if minute != self._minute:
                self._minute = minute
                self._conn.execute(
                    "DELETE FROM api_usage WHERE minute < ?", (minute_of(when - KEEP),)
                )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def usage_figures(conn: sqlite3.Connection, now: datetime) -> dict[str, int]:
    """Calls this minute, calls and 429s today (UTC), from an open read connection."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "api_usage" not in tables:
        return {"calls_this_minute": 0, "calls_today": 0, "rate_limited_today": 0}
    (this_minute,) = conn.execute(
        "SELECT COALESCE(SUM(calls), 0) FROM api_usage WHERE minute = ?", (minute_of(now),)
    ).fetchone()
    today = format_utc(now)[:10]
    calls, limited = conn.execute(
        "SELECT COALESCE(SUM(calls), 0), COALESCE(SUM(rate_limited), 0) FROM api_usage "
        "WHERE minute >= ?",
        (today,),
    ).fetchone()
    return {
        "calls_this_minute": int(this_minute),
        "calls_today": int(calls),
        "rate_limited_today": int(limited),
    }
