"""The SQLite store: connection, versioned migrations, transactions, error translation.

One :class:`~sqlite_utils.Database` is injected (a file in production, a temp file
in tests). The connection runs in autocommit mode and every write goes through
:func:`transaction` (``BEGIN IMMEDIATE``; nested calls use savepoints), so the
unit of atomicity is explicit: a page's snapshot changes, its events and their
queued deliveries commit together or not at all.

``sqlite3`` errors never leave this package: :func:`translate_errors` turns them
into :class:`~watcher.errors.StoreError` (``StoreLockedError`` for a busy or
locked database, ``StoreFullError`` when the disk is full).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlite_utils import Database

from watcher.dates import format_utc
from watcher.errors import StoreError, StoreFullError, StoreLockedError

if TYPE_CHECKING:
    from watcher.config import WatcherConfig

Migration = tuple[int, str, tuple[str, ...]]

# Append only: a released migration is never edited, a change is a new version.
MIGRATIONS: tuple[Migration, ...] = (
    (
        1,
        "snapshots, polls, events, deliveries, pauses, source state",
        (
            """CREATE TABLE snapshots (
                source TEXT NOT NULL,
                key TEXT NOT NULL,
                fp INTEGER NOT NULL,
                body TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (source, key)
            ) WITHOUT ROWID""",
            """CREATE TABLE polls (
                id TEXT PRIMARY KEY,
                source TEXT NOT NULL,
                mode TEXT NOT NULL,
                trigger TEXT NOT NULL,
                started_at TEXT NOT NULL,
                finished_at TEXT,
                pages INTEGER NOT NULL DEFAULT 0,
                records INTEGER NOT NULL DEFAULT 0,
                api_calls INTEGER NOT NULL DEFAULT 0,
                created INTEGER NOT NULL DEFAULT 0,
                updated INTEGER NOT NULL DEFAULT 0,
                deleted INTEGER NOT NULL DEFAULT 0,
                outcome TEXT NOT NULL DEFAULT 'running',
                error TEXT
            )""",
            "CREATE INDEX polls_source_started ON polls (source, started_at)",
            """CREATE TABLE events (
                sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                type TEXT NOT NULL,
                source TEXT NOT NULL,
                subject TEXT NOT NULL,
                time TEXT NOT NULL,
                poll_id TEXT,
                body TEXT NOT NULL
            )""",
            "CREATE INDEX events_source_sequence ON events (source, sequence)",
            "CREATE INDEX events_time ON events (time)",
            """CREATE TABLE deliveries (
                id TEXT PRIMARY KEY,
                event_sequence INTEGER NOT NULL,
                event_id TEXT NOT NULL,
                rule TEXT NOT NULL,
                sink TEXT NOT NULL,
                order_key TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'pending',
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at REAL,
                last_error TEXT,
                created_at TEXT NOT NULL,
                delivered_at TEXT
            )""",
            "CREATE INDEX deliveries_due ON deliveries (status, sink, next_attempt_at)",
            "CREATE INDEX deliveries_order ON deliveries (sink, order_key, event_sequence)",
            """CREATE TABLE pauses (
                kind TEXT NOT NULL,
                name TEXT NOT NULL,
                paused_at TEXT NOT NULL,
                reason TEXT,
                PRIMARY KEY (kind, name)
            )""",
            """CREATE TABLE source_state (
                source TEXT PRIMARY KEY,
                baseline_at TEXT,
                watermark TEXT,
                delete_log_since TEXT,
                last_full_at TEXT,
                held_at TEXT,
                held_count INTEGER,
                held_total INTEGER,
                held_poll_id TEXT
            )""",
        ),
    ),
    (
        2,
        "daemon schedule: last start and finish per source and mode",
        (
            """CREATE TABLE IF NOT EXISTS daemon_schedule (
                source TEXT NOT NULL,
                mode TEXT NOT NULL,
                last_start TEXT NOT NULL,
                last_finish TEXT,
                outcome TEXT,
                PRIMARY KEY (source, mode)
            )""",
        ),
    ),
    (
        3,
        "tenant metadata found once (e.g. the Customer Goals object's API name)",
        (
            """CREATE TABLE IF NOT EXISTS tenant_meta (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                found_at TEXT NOT NULL
            )""",
        ),
    ),
    (
        4,
        "deliveries: operator retries that skip the throttle, replay message ids",
        (
            "ALTER TABLE deliveries ADD COLUMN explicit INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE deliveries ADD COLUMN message_id TEXT",
            "CREATE INDEX deliveries_throttle ON deliveries (sink, rule, status, event_sequence)",
        ),
    ),
    (
        5,
        "field sets: the select each snapshot was taken with",
        (
            "ALTER TABLE snapshots ADD COLUMN fields INTEGER",
            """CREATE TABLE field_sets (
                id INTEGER PRIMARY KEY,
                source TEXT NOT NULL,
                fields TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (source, fields)
            )""",
        ),
    ),
    (
        6,
        "api usage: Gainsight calls and 429s per minute, for watcher status",
        (
            """CREATE TABLE IF NOT EXISTS api_usage (
                minute TEXT PRIMARY KEY,
                calls INTEGER NOT NULL DEFAULT 0,
                rate_limited INTEGER NOT NULL DEFAULT 0
            ) WITHOUT ROWID""",
        ),
    ),
    (
        7,
        "snapshot fingerprints by key: sweeps scan a page's key window without the bodies",
        ("CREATE INDEX snapshots_fp ON snapshots (source, key, fp)",),
    ),
    (
        8,
        "sweep pages: a full sweep settles a page it read before by the reply's digest",
        (
            """CREATE TABLE sweep_pages (
                source TEXT NOT NULL,
                after TEXT NOT NULL,
                last TEXT NOT NULL,
                count INTEGER NOT NULL,
                fp_sum TEXT NOT NULL,
                digest INTEGER NOT NULL,
                top TEXT,
                PRIMARY KEY (source, after)
            ) WITHOUT ROWID""",
        ),
    ),
    (
        9,
        "sweep pages keep their window's fingerprints; snapshots indexed by key only",
        (
            # Keys only: an index entry never changes when a record does, so an update
            # writes one page (the record's), where the fingerprint index made it two
            # (a 1%-changed sweep wrote a third fewer WAL frames without it). Counts
            # and key scans (status, missing keys) still read the narrow index.
            "CREATE INDEX IF NOT EXISTS snapshots_keys ON snapshots (source, key)",
            "DROP INDEX IF EXISTS snapshots_fp",
            # Rows are now trusted while they exist (watcher.store.sweep_pages): those
            # of older versions were only checked hints.
            "DELETE FROM sweep_pages",
            "ALTER TABLE sweep_pages ADD COLUMN keys INTEGER",
            "ALTER TABLE sweep_pages ADD COLUMN fps BLOB",
        ),
    ),
)


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn ``sqlite3`` errors raised while doing ``what`` into :class:`StoreError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise classify(exc, what) from exc
    except UnicodeEncodeError as exc:  # text SQLite cannot store (a lone surrogate)
        raise StoreError(
            f"store: {what}: a value is not valid Unicode text ({exc.reason}); "
            "the record cannot be stored"
        ) from exc


def classify(exc: sqlite3.Error, what: str) -> StoreError:
    text = str(exc).lower()
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL or "disk is full" in text or "database or disk is full" in text:
        return StoreFullError(f"store: {what}: the disk is full; free space and retry")
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text or "busy" in text:
        return StoreLockedError(
            f"store: {what}: the database is locked by another process; "
            "is another watcher writing to it?"
        )
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or (
        "malformed" in text or "not a database" in text
    ):
        return StoreError(
            f"store: {what}: the database file is damaged ({exc}); stop watcher, move the "
            "file aside (keep it for inspection) and restore a backup, or start on a new "
            "file (each source then takes a new silent baseline)"
        )
    return StoreError(f"store: {what}: {exc}")


#: The database holds full customer records: readable and writable by its owner only.
FILE_MODE = 0o600


def own_file(path: Path) -> None:
    """Create ``path`` owner-only whatever the umask, or make an existing one so.

    SQLite gives the ``-wal`` and ``-shm`` files the database file's mode, so those
    follow; they are tightened too when an older watcher left them readable."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if side.stat().st_mode & 0o077:
                side.chmod(FILE_MODE)


def store_path(config: WatcherConfig, base_dir: Path) -> Path:
    """The database file of ``config``: ``[store] path``, relative to the config's folder."""
    path = Path(config.store.path)
    return path if path.is_absolute() else base_dir / path


def open_database(path: str | Path) -> Database:
    """Open (creating, owner-only) the SQLite file at ``path`` with the store's pragmas."""
    p = Path(path)
    try:
        if p.parent and not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        own_file(p)
        db = Database(p, execute_plugins=False)  # no sqlite-utils plugins: 14 ms saved
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"store: cannot open {str(p)!r}: {exc}; check the path") from exc
    prepare(db)
    return db


def prepare(db: Database) -> None:
    """Pragmas every connection needs: autocommit driver, WAL, busy timeout."""
    with translate_errors("configure connection"):
        conn = db.conn
        if conn.in_transaction:
            conn.commit()
        conn.isolation_level = None
        # Both only on a new, empty file. 8 KiB pages (set first: auto_vacuum fixes the
        # size) hold about eleven snapshots each, against five in 4 KiB ones, and a
        # baseline's inserts cost a sixth less. Incremental vacuum: the purge can then
        # return free pages (watcher.store.retention converts an older file once).
        conn.execute("PRAGMA page_size = 8192")
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA busy_timeout = 10000")
        # Deleted rows' bytes are overwritten in their page where that costs no extra
        # I/O; the daily purge returns the free pages (watcher.store.retention).
        conn.execute("PRAGMA secure_delete = FAST")
        if not db.memory:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -32000")
        # Checkpoint the WAL every ~80 MB (10,000 8 KiB pages) instead of SQLite's 8 MB:
        # a sweep's commits then reach the database file in a few checkpoints, pages
        # written by several commits once (a 200,000-record baseline took a tenth
        # less). Back to 64 MiB on disk after each checkpoint.
        conn.execute("PRAGMA wal_autocheckpoint = 10000")
        conn.execute("PRAGMA journal_size_limit = 67108864")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, what: str = "write") -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; a nested call is a savepoint."""
    with translate_errors(what):
        if conn.in_transaction:
            conn.execute("SAVEPOINT nested")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK TO SAVEPOINT nested")
                    conn.execute("RELEASE SAVEPOINT nested")
                raise
            conn.execute("RELEASE SAVEPOINT nested")
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if _in_transaction(conn):  # an error may already have rolled it back
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _in_transaction(conn: sqlite3.Connection) -> bool:
    """Read ``in_transaction`` afresh: mypy would keep it narrowed to ``False`` from the check
    before ``BEGIN`` and call the rollback unreachable."""
    return conn.in_transaction


def schema_version(conn: sqlite3.Connection) -> int:
    with translate_errors("read schema version"):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(
    db: Database,
    now: Callable[[], datetime],
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> int:
    """Apply every migration newer than the database, each in its own transaction."""
    prepare(db)
    conn = db.conn
    current = schema_version(conn)
    newest = max((m[0] for m in migrations), default=0)
    if current > newest:
        raise StoreError(
            f"store: the database schema is version {current}, newer than this watcher "
            f"understands ({newest}); upgrade watcher"
        )
    for version, name, statements in migrations:
        if version <= current:
            continue
        with transaction(conn, f"migrate to version {version}"):
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, format_utc(now())),
            )
        current = version
    return current
