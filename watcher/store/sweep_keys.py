"""What a full sweep saw and what it missed, in connection-private ``temp`` tables.

Two ways to know it, one per sweep: a sweep in key order reads each page's *window*
of the stored keys (:meth:`SweepKeys.window`) and puts the stored keys its page lacks
in ``temp.missing``; any other sweep marks every key it read in ``temp.seen`` and
collects the missing keys at the end (:meth:`SweepKeys.missing_collect`). Rows carry
the source, so concurrent sweeps of different sources on one connection keep
separate sets.
"""

# ruff: noqa: S608  # SQL text only interpolates "?" placeholders and fixed table names
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from itertools import compress
from operator import itemgetter, ne

from watcher.store.db import translate_errors
from watcher.store.snapshots import CHUNK, fingerprints_by_key, key_array

# A key window of a source: the keys after one key (exclusive; "" for all: keys are
# never empty) up to another (inclusive). Parameters: source, after, last.
_WINDOW = "source = ? AND key > ? AND key <= ?"


def window_sum(conn: sqlite3.Connection, source: str, after: str, last: str) -> tuple[int, int]:
    """How many snapshots the window holds, and the exact sum of their fingerprints
    (SQLite sums their two 32-bit halves apart, so no sum overflows; 0 when empty)."""
    count, high, low = conn.execute(
        f"SELECT COUNT(*), SUM(fp >> 32), SUM(fp & 4294967295) FROM snapshots WHERE {_WINDOW}",
        (source, after, last),
    ).fetchone()
    return count, ((high << 32) + low if count else 0)


class SweepKeys:
    """The sweep's seen-set, missing set and key windows (temp tables)."""

    conn: sqlite3.Connection

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

    def window(
        self, source: str, prints: dict[str, int], after: str | None
    ) -> tuple[dict[str, int], int]:
        """Stored fingerprints of a page (``prints``: its keys and fingerprints) whose
        keys all sort after ``after`` (the last key of the page before; ``None`` for the
        first page), and how many stored keys of the window the page lacks.

        The stored keys from ``after`` (exclusive) to the page's highest key are one
        range of the primary key. Their fingerprints alone are read, in key order, and
        set against the page's: the same list means the same records - a fingerprint
        hashes the whole record, key included - and ``prints`` itself is returned (a
        page whose reply differs while its records do not). The keys whose fingerprint
        differs at their place (a few records changed) are looked up by key, and when
        every one of them is stored the window holds exactly the page's keys, so
        nothing is missing. Otherwise (keys gone or come, a page in another order) the
        range's keys and fingerprints are read; the stored keys the page lacks go to
        the missing set.
        """
        args = (source, after or "", max(prints))
        with translate_errors("read snapshots"):
            same_keys = self._same_keys(prints, args)
            if same_keys is not None:
                return same_keys, 0
            stored: dict[str, int] = dict(
                self.conn.execute(
                    f"SELECT key, fp FROM snapshots WHERE {_WINDOW} ORDER BY key", args
                )
            )
        gone = stored.keys() - prints.keys()
        if gone:
            for key in gone:
                del stored[key]
            self._missing_insert(source, ((source, key) for key in sorted(gone)))
        return stored, len(gone)

    def _same_keys(
        self, prints: dict[str, int], args: tuple[str, str, str]
    ) -> dict[str, int] | None:
        """The stored fingerprints of a window (``args``: source, after, last key) when
        it holds exactly the page's keys (``prints`` itself when nothing differs); else
        ``None``."""
        rows = self.conn.execute(f"SELECT fp FROM snapshots WHERE {_WINDOW} ORDER BY key", args)
        fps = list(map(itemgetter(0), rows))
        if len(fps) != len(prints):
            return None  # keys gone or come: read the keys
        odd = list(compress(prints, map(ne, prints.values(), fps)))
        if not odd:
            return prints  # the caller's own mapping: nothing stored differs
        if len(odd) * 4 > len(prints):
            return None  # rows moved, or another order: read the keys
        found = fingerprints_by_key(self.conn, args[0], odd)
        if len(found) < len(odd):
            return None  # a key of the page is new: some stored key is missing
        stored = dict(prints)
        stored.update(found)
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
