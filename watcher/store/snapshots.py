"""Table ``snapshots`` (the last record read per source and key), ``field_sets`` (the
select each snapshot was read with) and the sweep's seen-set (connection-private
``temp`` tables). Writes of snapshots happen in :meth:`watcher.store.Store.commit`.
"""

# ruff: noqa: S608  # SQL text only interpolates "?" placeholders and fixed table names
from __future__ import annotations

import itertools
import json
import operator
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence

import orjson

from watcher.clock import Clock
from watcher.core.normalize import Record
from watcher.dates import format_utc
from watcher.store.db import transaction, translate_errors

# A page of at least this many keys reads its stored fingerprints by key range first.
RANGE_SCAN_MIN = 64
# SQLite's default limit on bound parameters is 32766 (3.32+); stay far below.
CHUNK = 900

# The fallback for what orjson refuses. ASCII-only: a lone surrogate ("\\ud800" is a
# legal JSON escape) stays an escape, and SQLite, which stores UTF-8, never sees text
# it cannot encode. NaN and Infinity have no JSON spelling: records are normalized
# without them (orjson would write null).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def key_array(keys: Sequence[str]) -> str:
    """``keys`` as one JSON array, for ``json_each`` (text: SQLite 3.45+ reads a blob
    as its binary JSONB)."""
    try:
        return orjson.dumps(list(keys)).decode()
    except TypeError:  # text orjson refuses (a lone surrogate): the stdlib escapes it
        return json.dumps(list(keys))


def snapshot_text(record: Record) -> str:
    """Snapshot text: compact JSON, fields in the order Gainsight sent them.

    Written by orjson (a seventh of the stdlib's time: a baseline writes every record);
    what it refuses (an integer beyond 64 bits, a lone surrogate) by the stdlib, which
    escapes it."""
    try:
        return _orjson_dumps(record).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return _ENCODER.encode(record)


def snapshot_texts(records: Sequence[Record]) -> list[str]:
    """:func:`snapshot_text` of each record, a page's worth written in C."""
    try:
        return list(map(bytes.decode, map(_orjson_dumps, records)))
    except TypeError:
        return [snapshot_text(r) for r in records]


def _halves(prints: Iterable[int]) -> tuple[int, int]:
    """The sums of the high and the low 32-bit halves of fingerprints, as SQLite's
    ``SUM(fp >> 32), SUM(fp & 4294967295)`` gives them."""
    values = list(prints)
    return sum(map(_rshift, values, _repeat(32))), sum(map(_and, values, _repeat(_LOW32)))


_orjson_dumps = orjson.dumps
_repeat = itertools.repeat
_rshift, _and = operator.rshift, operator.and_
_LOW32 = 0xFFFFFFFF


def write_snapshots(
    conn: sqlite3.Connection,
    source: str,
    writes: Sequence[tuple[str, int, Record]],
    deletes: Sequence[str],
    *,
    field_set: int | None,
    now: str,
) -> None:
    """Upsert and delete snapshots (in the caller's transaction)."""
    if writes:
        keys, prints, records = zip(*writes, strict=True)
        conn.executemany(
            "INSERT INTO snapshots (source, key, fp, body, updated_at, fields) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, key) DO UPDATE SET "
            "fp = excluded.fp, body = excluded.body, updated_at = excluded.updated_at, "
            "fields = COALESCE(excluded.fields, fields)",
            zip(
                _repeat(source, len(keys)),
                keys,
                prints,
                snapshot_texts(records),
                _repeat(now, len(keys)),
                _repeat(field_set, len(keys)),
                strict=True,
            ),
        )
    if deletes:
        conn.executemany(
            "DELETE FROM snapshots WHERE source = ? AND key = ?",
            ((source, key) for key in deletes),
        )


class Snapshots:
    """Reads of ``snapshots`` and ``field_sets``; the sweep's seen-set."""

    conn: sqlite3.Connection
    clock: Clock

    def has_snapshots(self, source: str) -> bool:
        with translate_errors("count snapshots"):
            row = self.conn.execute(
                "SELECT 1 FROM snapshots WHERE source = ? LIMIT 1", (source,)
            ).fetchone()
        return row is not None

    def count_snapshots(self, source: str) -> int:
        with translate_errors("count snapshots"):
            row = self.conn.execute(
                "SELECT COUNT(*) FROM snapshots WHERE source = ?", (source,)
            ).fetchone()
        return int(row[0])

    def fingerprints(self, source: str, keys: Sequence[str]) -> dict[str, int]:
        """Stored fingerprint of each of ``keys`` that has a snapshot.

        One query for a whole page, whatever its size. A page of a sweep in key order
        holds a window of the keys: its stored fingerprints are one range scan of the
        primary key (a third of the time of looking each key up). When the range holds
        far more snapshots than the page has keys (a page in another order), the keys
        go in as one JSON array (``json_each``), each looked up in the primary key.
        """
        if not keys:
            return {}
        with translate_errors("read snapshots"):
            if len(keys) >= RANGE_SCAN_MIN:
                limit = 2 * len(keys) + RANGE_SCAN_MIN
                rows = self.conn.execute(
                    "SELECT key, fp FROM snapshots WHERE source = ? AND key BETWEEN ? AND ? "
                    "LIMIT ?",
                    (source, min(keys), max(keys), limit),
                ).fetchall()
                if len(rows) < limit:
                    found = dict(rows)
                    return {k: found[k] for k in keys if k in found}
            return dict(
                self.conn.execute(
                    "SELECT key, fp FROM snapshots WHERE source = ? "
                    "AND key IN (SELECT value FROM json_each(?))",
                    (source, key_array(keys)),
                )
            )

    def records(self, source: str, keys: Sequence[str]) -> dict[str, Record]:
        """Stored record of each of ``keys`` that has a snapshot."""
        out: dict[str, Record] = {}
        with translate_errors("read snapshots"):
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, body in self.conn.execute(
                    f"SELECT key, body FROM snapshots WHERE source = ? AND key IN ({marks})",
                    (source, *chunk),
                ):
                    out[key] = json.loads(body)
        return out

    def snapshot_rows(self, source: str, keys: Sequence[str]) -> dict[str, tuple[Record, int]]:
        """Stored record and field-set id (:meth:`field_sets`) of each of ``keys``."""
        out: dict[str, tuple[Record, int]] = {}
        with translate_errors("read snapshots"):
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, body, fields in self.conn.execute(
                    f"SELECT key, body, COALESCE(fields, 0) FROM snapshots "
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
            # One statement for the page (the keys as one JSON array): a third of the
            # time of binding 5000 rows one by one.
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO temp.seen (source, key, page) "
                "SELECT ?, value, ? FROM json_each(?)",
                (source, page, key_array(keys)),
            )
            again: list[str] = []
            if cur.rowcount < len(keys):
                for start in range(0, len(keys), CHUNK):
                    chunk = keys[start : start + CHUNK]
                    marks = ",".join("?" * len(chunk))
                    again.extend(
                        row[0]
                        for row in self.conn.execute(
                            f"SELECT key FROM temp.seen WHERE source = ? AND page != ? "
                            f"AND key IN ({marks})",
                            (source, page, *chunk),
                        )
                    )
            if own:
                self.conn.execute("COMMIT")
        return again

    # -- a sweep in key order: what it saw is a key range ---------------------------
    # Pages of a sweep ordered by key (the query route's offset paging) hold windows
    # of the key space one after another: the stored keys of a window that its page
    # lacks are what the sweep did not see, so no seen-set is kept (a third of a
    # steady sweep's time). The poll engine falls back to the seen-set
    # (:meth:`seen_from_window`) when a page breaks the order.

    def window(self, source: str, prints: Mapping[str, int], after: str | None) -> dict[str, int]:
        """Stored fingerprints of a page (``prints``: its keys and fingerprints) whose
        keys all sort after ``after`` (the last key of the page before; ``None`` for the
        first page).

        The stored keys from ``after`` (exclusive) to the page's highest key are one
        range of the index ``snapshots_fp``. First SQLite sums that range's
        fingerprints (their two 32-bit halves apart) and counts it: the same count and
        sums as the page's mean the same fingerprints - a fingerprint hashes the whole
        record, key included, so a key gone and another come, or a record changed,
        move the sums - and the page itself is returned, no row read into Python (the
        steady sweep). Otherwise the range is read; the stored keys the page lacks go
        to the missing set.
        """
        where = "source = ? AND key <= ?"
        args: tuple[str, ...] = (source, max(prints))
        if after is not None:
            where, args = f"{where} AND key > ?", (*args, after)
        with translate_errors("read snapshots"):
            count, high, low = self.conn.execute(
                f"SELECT COUNT(*), SUM(fp >> 32), SUM(fp & 4294967295) FROM snapshots "
                f"WHERE {where}",
                args,
            ).fetchone()
            if count == len(prints) and (high, low) == _halves(prints.values()):
                return dict(prints)
            stored: dict[str, int] = dict(
                self.conn.execute(f"SELECT key, fp FROM snapshots WHERE {where} ORDER BY key", args)
            )
        gone = stored.keys() - prints.keys()
        if gone:
            for key in gone:
                del stored[key]
            self._missing_insert(source, ((source, key) for key in sorted(gone)))
        return stored

    def missing_tail(self, source: str, after: str | None) -> None:
        """Every stored key after the last window (all of them if no page had a key)."""
        sql = (
            "INSERT INTO temp.missing (source, key) "
            "SELECT source, key FROM snapshots WHERE source = ?"
        )
        args: tuple[str, ...] = (source,)
        if after is not None:
            sql, args = f"{sql} AND key > ?", (source, after)
        with translate_errors("find missing keys"):
            self.conn.execute(f"{sql} ORDER BY key", args)

    def missing_drop(self, source: str, keys: Iterable[str]) -> None:
        """Take ``keys`` out of the missing set (seen after all)."""
        keys = list(keys)
        if not keys:
            return
        with translate_errors("mark seen keys"):
            self.conn.execute(
                "DELETE FROM temp.missing WHERE source = ? "
                "AND key IN (SELECT value FROM json_each(?))",
                (source, key_array(keys)),
            )

    def missing_prune(self, source: str) -> int:
        """Drop missing keys that have no snapshot any more; return how many are left."""
        with translate_errors("find missing keys"):
            self.conn.execute(
                "DELETE FROM temp.missing WHERE source = ? AND NOT EXISTS (SELECT 1 FROM "
                "snapshots s WHERE s.source = temp.missing.source AND s.key = temp.missing.key)",
                (source,),
            )
            row = self.conn.execute(
                "SELECT COUNT(*) FROM temp.missing WHERE source = ?", (source,)
            ).fetchone()
        return int(row[0])

    def seen_from_window(self, source: str, upto: str) -> None:
        """Switch a sweep from windows to the seen-set: every stored key up to ``upto``
        that is not missing was seen; the missing set is emptied (collected again at
        the end, :meth:`missing_collect`)."""
        with translate_errors("mark seen keys"):
            own = not self.conn.in_transaction
            if own:
                self.conn.execute("BEGIN")
            self.conn.execute(
                "INSERT OR IGNORE INTO temp.seen (source, key, page) "
                "SELECT s.source, s.key, 0 FROM snapshots s WHERE s.source = ? AND s.key <= ? "
                "AND NOT EXISTS (SELECT 1 FROM temp.missing m "
                "WHERE m.source = s.source AND m.key = s.key)",
                (source, upto),
            )
            self.conn.execute("DELETE FROM temp.missing WHERE source = ?", (source,))
            if own:
                self.conn.execute("COMMIT")

    def _missing_insert(self, source: str, rows: Iterable[tuple[str, str]]) -> None:
        with translate_errors("find missing keys"):
            own = not self.conn.in_transaction
            if own:
                self.conn.execute("BEGIN")
            self.conn.executemany("INSERT INTO temp.missing (source, key) VALUES (?, ?)", rows)
            if own:
                self.conn.execute("COMMIT")

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
                    self.conn.execute(f"DELETE FROM temp.{table} WHERE source = ?", (source,))
