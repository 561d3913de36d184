"""Tables ``source_state`` (per source: baseline, watermark, delete-log mark, held
mass delete) and ``tenant_meta`` (facts about the tenant found once)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watcher.clock import Clock
from watcher.dates import format_utc
from watcher.store.db import transaction, translate_errors

STATE_COLUMNS = frozenset(
    {
        "baseline_at",
        "watermark",
        "delete_log_since",
        "last_full_at",
        "held_at",
        "held_count",
        "held_total",
        "held_poll_id",
    }
)


@dataclass(frozen=True)
class SourceState:
    source: str
    baseline_at: str | None = None
    watermark: str | None = None
    delete_log_since: str | None = None
    last_full_at: str | None = None
    held_at: str | None = None
    held_count: int | None = None
    held_total: int | None = None
    held_poll_id: str | None = None


def write_state(conn: sqlite3.Connection, source: str, values: Mapping[str, Any]) -> None:
    """Set ``source_state`` columns of ``source`` (in the caller's transaction)."""
    unknown = set(values) - STATE_COLUMNS
    if unknown:
        raise ValueError(f"unknown source_state columns: {sorted(unknown)}")
    conn.execute("INSERT OR IGNORE INTO source_state (source) VALUES (?)", (source,))
    sets = ", ".join(f"{name} = ?" for name in values)
    conn.execute(
        f"UPDATE source_state SET {sets} WHERE source = ?",  # noqa: S608 - allow-listed columns
        (*values.values(), source),
    )


class States:
    """Per-source state and tenant metadata on the store's connection."""

    conn: sqlite3.Connection
    clock: Clock

    def meta_get(self, name: str) -> str | None:
        """A remembered fact about the tenant (``tenant_meta``), or ``None``."""
        with translate_errors("read tenant metadata"):
            row = self.conn.execute(
                "SELECT value FROM tenant_meta WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else str(row[0])

    def meta_set(self, name: str, value: str) -> None:
        with transaction(self.conn, "write tenant metadata"):
            self.conn.execute(
                "INSERT INTO tenant_meta (name, value, found_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value, "
                "found_at = excluded.found_at",
                (name, value, format_utc(self.clock.now())),
            )

    def state(self, source: str) -> SourceState:
        with translate_errors("read source state"):
            cur = self.conn.execute("SELECT * FROM source_state WHERE source = ?", (source,))
            row = cur.fetchone()
            if row is None:
                return SourceState(source)
            names = [d[0] for d in cur.description]
        return SourceState(**dict(zip(names, row, strict=True)))

    def set_state(self, source: str, **values: Any) -> None:
        with transaction(self.conn, "write source state"):
            write_state(self.conn, source, values)
