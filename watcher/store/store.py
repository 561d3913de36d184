"""The store's operations: snapshots, the sweep's seen-set, commits, events, polls, state.

:class:`Store` owns one SQLite connection (not thread-safe; one per task). The
poll engine reads stored fingerprints page by page, marks the keys it saw in a
connection-private ``temp`` table (memory stays bounded: SQLite spills it to
disk), and hands each page's outcome to :meth:`Store.commit`, which writes the
snapshot changes, the events (with their strictly increasing ``sequence``) and
the deliveries the engine routed for them (:attr:`PageCommit.routes`), in one
transaction. The store matches no rule: it only writes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from watcher.clock import Clock, SystemClock
from watcher.core.events import order_key, with_sequence
from watcher.core.normalize import Record
from watcher.dates import format_utc
from watcher.errors import StoreError
from watcher.store.db import migrate, open_database, transaction, translate_errors
from watcher.store.deliveries import Route, queue_deliveries

# SQLite's default limit on bound parameters is 32766 (3.32+); stay far below.
_CHUNK = 900
# The polls columns that hold counts: the allow-list for their UPDATEs.
_POLL_COUNTS = frozenset({"pages", "records", "api_calls", "created", "updated", "deleted"})
_STATE_COLUMNS = frozenset(
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


# ASCII-only: a lone surrogate ("\ud800" is a legal JSON escape) stays an escape, and
# SQLite, which stores UTF-8, never sees text it cannot encode. NaN and Infinity have
# no JSON spelling: records are normalized without them, and writing one is an error.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _body(record: Record) -> str:
    """Snapshot text: compact JSON, fields in the order Gainsight sent them."""
    return _ENCODER.encode(record)


def event_text(event: dict[str, Any]) -> str:
    """The CloudEvent as stored and delivered: UTF-8 JSON, escapes only where needed.

    Strict JSON: a ``NaN`` or ``Infinity`` raises ``ValueError`` instead of writing a
    token strict receivers reject (records never carry one: see
    :mod:`watcher.core.normalize`).
    """
    text = json.dumps(event, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep it as a \u escape
        text = json.dumps(event, allow_nan=False)
    return text


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


@dataclass
class PageCommit:
    """Everything one unit of work changes, committed atomically by :meth:`Store.commit`."""

    writes: list[tuple[str, int, Record]] = field(default_factory=list)  # key, fp, record
    field_set: int | None = None  # the select the writes were read with (Store.field_set)
    deletes: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # CloudEvents, no sequence
    # The (rule, sink) pairs each event is delivered to, in the order of ``events``
    # (the engine's matcher fills it; missing entries queue nothing).
    routes: list[Sequence[Route]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # source_state columns to set
    poll_id: str | None = None
    poll_counts: dict[str, int] = field(default_factory=dict)  # added to the poll row
    seen: list[str] = field(default_factory=list)  # keys to add to the sweep's seen-set

    def route(self, matcher: Callable[[dict[str, Any]], Sequence[Route]]) -> PageCommit:
        """Fill :attr:`routes` from ``matcher`` (event -> (rule, sink) pairs); returns self."""
        self.routes = [matcher(event) for event in self.events]
        return self


@dataclass(frozen=True)
class StoredEvent:
    sequence: int
    id: str
    type: str
    source: str
    subject: str
    time: str
    poll_id: str | None
    body: str

    def cloudevent(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


class Store:
    """Snapshots, events, polls and per-source state in one SQLite database."""

    def __init__(self, db: Database, *, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()
        migrate(db, self.clock.now)
        self.conn: sqlite3.Connection = db.conn
        self._file = self._identify_file()

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
        with translate_errors("close"):
            self.conn.close()

    # -- snapshots ---------------------------------------------------------------

    def count_snapshots(self, source: str) -> int:
        with translate_errors("count snapshots"):
            row = self.conn.execute(
                "SELECT COUNT(*) FROM snapshots WHERE source = ?", (source,)
            ).fetchone()
        return int(row[0])

    def fingerprints(self, source: str, keys: Sequence[str]) -> dict[str, int]:
        """Stored fingerprint of each of ``keys`` that has a snapshot."""
        out: dict[str, int] = {}
        with translate_errors("read snapshots"):
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                out.update(
                    self.conn.execute(
                        f"SELECT key, fp FROM snapshots WHERE source = ? AND key IN ({marks})",  # noqa: S608 - only placeholders are interpolated
                        (source, *chunk),
                    )
                )
        return out

    def records(self, source: str, keys: Sequence[str]) -> dict[str, Record]:
        """Stored record of each of ``keys`` that has a snapshot."""
        out: dict[str, Record] = {}
        with translate_errors("read snapshots"):
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, body in self.conn.execute(
                    f"SELECT key, body FROM snapshots WHERE source = ? AND key IN ({marks})",  # noqa: S608 - only placeholders are interpolated
                    (source, *chunk),
                ):
                    out[key] = json.loads(body)
        return out

    def snapshot_rows(self, source: str, keys: Sequence[str]) -> dict[str, tuple[Record, int]]:
        """Stored record and field-set id (:meth:`field_sets`) of each of ``keys``."""
        out: dict[str, tuple[Record, int]] = {}
        with translate_errors("read snapshots"):
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, body, fields in self.conn.execute(
                    f"SELECT key, body, COALESCE(fields, 0) FROM snapshots "  # noqa: S608 - only placeholders are interpolated
                    f"WHERE source = ? AND key IN ({marks})",
                    (source, *chunk),
                ):
                    out[key] = (json.loads(body), fields)
        return out

    # -- the field sets snapshots were taken with ----------------------------------
    # A field set is a source's effective select, sorted. Snapshots written before
    # field sets were recorded carry none (id 0): they count as taken with the
    # source's first recorded field set - the select in force when this version
    # first polled it.

    def field_set(self, source: str, fields: Iterable[str], *, create: bool = True) -> int | None:
        """The id of ``fields`` for ``source`` (created unless ``create`` is false)."""
        text = json.dumps(sorted(set(fields)), separators=(",", ":"))
        with translate_errors("read field sets"):
            row = self.conn.execute(
                "SELECT id FROM field_sets WHERE source = ? AND fields = ?", (source, text)
            ).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            return None
        with transaction(self.conn, "record a field set"):
            cur = self.conn.execute(
                "INSERT INTO field_sets (source, fields, created_at) VALUES (?, ?, ?)",
                (source, text, format_utc(self.clock.now())),
            )
        return int(cur.lastrowid or 0)

    def field_sets(self, source: str) -> dict[int, frozenset[str]]:
        """Every recorded field set of ``source`` by id; id 0 is the first one recorded."""
        with translate_errors("read field sets"):
            rows = self.conn.execute(
                "SELECT id, fields FROM field_sets WHERE source = ? ORDER BY id", (source,)
            ).fetchall()
        out = {int(ident): frozenset(json.loads(text)) for ident, text in rows}
        if rows:
            out[0] = out[int(rows[0][0])]
        return out

    def iter_snapshots(self, source: str) -> Iterator[tuple[str, Record]]:
        """Every stored (key, record) of ``source`` in key order (tests, small sources)."""
        with translate_errors("read snapshots"):
            rows = self.conn.execute(
                "SELECT key, body FROM snapshots WHERE source = ? ORDER BY key", (source,)
            ).fetchall()
        for key, body in rows:
            yield key, json.loads(body)

    # -- the sweep's seen-set (connection-private temp tables) --------------------
    # Rows carry the source, so concurrent sweeps of different sources on one
    # connection keep separate sets.

    def seen_reset(self, source: str) -> None:
        with translate_errors("prepare sweep"):
            self.conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS seen (source TEXT NOT NULL, key TEXT NOT NULL, "
                "page INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (source, key)) WITHOUT ROWID"
            )
            self.conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS missing "
                "(n INTEGER PRIMARY KEY, source TEXT NOT NULL, key TEXT NOT NULL)"
            )
            self.seen_clear(source)

    def seen_add(self, source: str, keys: Iterable[str]) -> None:
        """Add keys to the seen-set (temp tables only: no lock on the database)."""
        with translate_errors("mark seen keys"):
            own = not self.conn.in_transaction
            if own:
                self.conn.execute("BEGIN")
            self.conn.executemany(
                "INSERT OR IGNORE INTO temp.seen (source, key) VALUES (?, ?)",
                ((source, k) for k in keys),
            )
            if own:
                self.conn.execute("COMMIT")

    def seen_mark(self, source: str, keys: Sequence[str], page: int) -> list[str]:
        """Add one page's keys to the seen-set; return those an earlier page already had.

        The common case costs nothing extra: only when fewer rows were added than
        keys given are the repeated keys looked up.
        """
        with translate_errors("mark seen keys"):
            own = not self.conn.in_transaction
            if own:
                self.conn.execute("BEGIN")
            cur = self.conn.executemany(
                "INSERT OR IGNORE INTO temp.seen (source, key, page) VALUES (?, ?, ?)",
                ((source, k, page) for k in keys),
            )
            again: list[str] = []
            if cur.rowcount < len(keys):
                for start in range(0, len(keys), _CHUNK):
                    chunk = keys[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    again.extend(
                        row[0]
                        for row in self.conn.execute(
                            f"SELECT key FROM temp.seen WHERE source = ? AND page != ? "  # noqa: S608 - only placeholders are interpolated
                            f"AND key IN ({marks})",
                            (source, page, *chunk),
                        )
                    )
            if own:
                self.conn.execute("COMMIT")
        return again

    def missing_collect(self, source: str) -> int:
        """Store the keys with a snapshot that the sweep did not see; return how many."""
        with translate_errors("find missing keys"):
            self.conn.execute("DELETE FROM temp.missing WHERE source = ?", (source,))
            cur = self.conn.execute(
                "INSERT INTO temp.missing (source, key) SELECT s.source, s.key FROM snapshots s "
                "WHERE s.source = ? AND NOT EXISTS "
                "(SELECT 1 FROM temp.seen t WHERE t.source = s.source AND t.key = s.key) "
                "ORDER BY s.key",
                (source,),
            )
        return int(cur.rowcount)

    def missing_batches(self, source: str, size: int) -> Iterator[list[str]]:
        """The collected missing keys, ``size`` at a time (bounded memory)."""
        last = 0
        while True:
            with translate_errors("read missing keys"):
                rows = self.conn.execute(
                    "SELECT n, key FROM temp.missing WHERE source = ? AND n > ? ORDER BY n LIMIT ?",
                    (source, last, size),
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [r[1] for r in rows]

    def key_after(self, source: str, key: str) -> str | None:
        """A key seen in this sweep (else stored) that sorts after ``key``: a sentinel."""
        with translate_errors("read a sentinel key"):
            for sql in (
                "SELECT key FROM temp.seen WHERE source = ? AND key > ? ORDER BY key LIMIT 1",
                "SELECT key FROM snapshots WHERE source = ? AND key > ? ORDER BY key LIMIT 1",
            ):
                try:
                    row = self.conn.execute(sql, (source, key)).fetchone()
                except sqlite3.OperationalError:  # no seen-set outside a full sweep
                    continue
                if row:
                    return str(row[0])
        return None

    def seen_clear(self, source: str) -> None:
        with translate_errors("finish sweep"):
            for table in ("seen", "missing"):
                exists = self.conn.execute(
                    "SELECT 1 FROM temp.sqlite_master WHERE name = ?", (table,)
                ).fetchone()
                if exists:
                    self.conn.execute(f"DELETE FROM temp.{table} WHERE source = ?", (source,))  # noqa: S608 - fixed table names

    # -- commits ---------------------------------------------------------------

    def commit(self, source: str, page: PageCommit) -> list[dict[str, Any]]:
        """Write ``page`` atomically; return its events as stored (with ``sequence``)."""
        self.check_file()
        now = format_utc(self.clock.now())
        conn = self.conn
        committed: list[dict[str, Any]] = []
        with transaction(conn, f"commit changes of source {source!r}"):
            if page.writes:
                fields = page.field_set
                conn.executemany(
                    "INSERT INTO snapshots (source, key, fp, body, updated_at, fields) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, key) DO UPDATE SET "
                    "fp = excluded.fp, body = excluded.body, updated_at = excluded.updated_at, "
                    "fields = COALESCE(excluded.fields, fields)",
                    ((source, key, fp, _body(rec), now, fields) for key, fp, rec in page.writes),
                )
            if page.deletes:
                conn.executemany(
                    "DELETE FROM snapshots WHERE source = ? AND key = ?",
                    ((source, key) for key in page.deletes),
                )
            if page.events:
                committed = self._insert_events(source, page, now)
            if page.state:
                self._set_state(source, page.state)
            if page.poll_id and page.poll_counts:
                self._add_poll_counts(page.poll_id, page.poll_counts)
            if page.seen:
                self.seen_add(source, page.seen)
        return committed

    def _insert_events(self, source: str, page: PageCommit, now: str) -> list[dict[str, Any]]:
        conn = self.conn
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        seq = int(row[0]) if row else 0
        when = self.clock.now()
        out: list[dict[str, Any]] = []
        for n, event in enumerate(page.events):
            seq += 1
            full = with_sequence(event, seq)
            conn.execute(
                "INSERT INTO events (sequence, id, type, source, subject, time, poll_id, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    full["id"],
                    full["type"],
                    source,
                    full["subject"],
                    full["time"],
                    page.poll_id,
                    event_text(full),
                ),
            )
            if n < len(page.routes) and page.routes[n]:
                queue_deliveries(
                    conn,
                    event_sequence=seq,
                    event_id=full["id"],
                    order_key=order_key(full, source),
                    routes=page.routes[n],
                    now=when,
                )
            out.append(full)
        return out

    # -- events ----------------------------------------------------------------

    def list_events(
        self,
        *,
        source: str | None = None,
        type: str | None = None,
        since: str | None = None,
        after: int | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[StoredEvent]:
        """Events in sequence order; ``newest`` takes the last ``limit`` instead of the first.

        ``type`` is a full type (``gainsight.company.updated``) or a change
        (``updated``, ``delete_held``) matched against the type's last part.
        """
        where: list[str] = []
        args: list[Any] = []
        if source:
            where.append("source = ?")
            args.append(source)
        if type:
            if "." in type:
                where.append("type = ?")
                args.append(type)
            else:
                where.append("type LIKE ?")
                args.append(f"%.{type}")
        if since:
            where.append("time >= ?")
            args.append(since)
        if after is not None:
            where.append("sequence > ?")
            args.append(after)
        sql = "SELECT sequence, id, type, source, subject, time, poll_id, body FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY sequence DESC" if newest else " ORDER BY sequence"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with translate_errors("read events"):
            rows = self.conn.execute(sql, args).fetchall()
        events = [StoredEvent(*row) for row in rows]
        if newest:
            events.reverse()
        return events

    def get_event(self, ident: str) -> StoredEvent | None:
        """One event by id, or by sequence number when ``ident`` is all digits."""
        sql = "SELECT sequence, id, type, source, subject, time, poll_id, body FROM events WHERE "
        with translate_errors("read event"):
            if ident.isascii() and ident.isdigit():
                row = self.conn.execute(sql + "sequence = ?", (int(ident),)).fetchone()
            else:
                row = self.conn.execute(sql + "id = ?", (ident,)).fetchone()
        return StoredEvent(*row) if row else None

    # -- polls -----------------------------------------------------------------

    def start_poll(self, poll_id: str, source: str, mode: str, trigger: str) -> None:
        self.check_file()
        with transaction(self.conn, "record poll start"):
            self.conn.execute(
                "INSERT INTO polls (id, source, mode, trigger, started_at) VALUES (?, ?, ?, ?, ?)",
                (poll_id, source, mode, trigger, format_utc(self.clock.now())),
            )

    def _add_poll_counts(self, poll_id: str, counts: Mapping[str, int]) -> None:
        sets = ", ".join(f"{name} = {name} + ?" for name in counts if name in _POLL_COUNTS)
        values = [v for name, v in counts.items() if name in _POLL_COUNTS]
        if sets:
            self.conn.execute(f"UPDATE polls SET {sets} WHERE id = ?", (*values, poll_id))  # noqa: S608 - column names come from a fixed allow-list

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
                if name in _POLL_COUNTS:
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

    # -- per-source state ------------------------------------------------------

    # -- tenant metadata found once --------------------------------------------

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
            self._set_state(source, values)

    def _set_state(self, source: str, values: Mapping[str, Any]) -> None:
        unknown = set(values) - _STATE_COLUMNS
        if unknown:
            raise ValueError(f"unknown source_state columns: {sorted(unknown)}")
        self.conn.execute("INSERT OR IGNORE INTO source_state (source) VALUES (?)", (source,))
        sets = ", ".join(f"{name} = ?" for name in values)
        self.conn.execute(
            f"UPDATE source_state SET {sets} WHERE source = ?",  # noqa: S608 - allow-listed columns
            (*values.values(), source),
        )
