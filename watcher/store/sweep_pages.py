"""Pages a full sweep read before: a page whose reply is the same again is settled
without looking at its records, and a page that changed is set against the stored
fingerprints of its window without reading them from the snapshots.

A sweep in key order reads the key space in windows, one a page
(:meth:`watcher.store.sweep_keys.SweepKeys.window`). When a window's page was read
the usual way, the store keeps a row for it (table ``sweep_pages``): where the window
starts (``after``, the previous page's last key; ``""`` for the first), its last key,
how many records the page had and the exact sum of their fingerprints, the page's
latest modified date, the digest of the reply's bytes
(:func:`watcher.gainsight.envelope.reply_digest`), the digest of the page's keys in
the order read (:func:`keys_digest`) and their fingerprints in that order
(:func:`pack_fingerprints`, 8 bytes each).

A row describes the stored window exactly, for as long as it exists:

- it is written in the transaction that stored the page, and only when every record
  of the page was stored as read (a record skipped, or kept back by the sweep guard,
  leaves no row);
- when another connection committed between the read of the window and that
  transaction (another watcher process; ``PRAGMA data_version`` tells), the window is
  first counted and summed again from the snapshots, and the row is written only if
  it still matches;
- every commit that writes or deletes a snapshot drops the rows whose window holds
  its key (:func:`drop_hints`, same transaction), and a window's new row replaces
  every row it overlaps, so rows never overlap.

The next sweep's page that starts at the same key with the same reply digest carries
the same records: it is settled. A page with another digest but the same keys in the
same order (records changed, none came or went) takes its stored fingerprints from
the row. Anything else reads the window from the snapshots. Each completed sweep
drops the rows of windows it no longer has (:meth:`SweepPages.sweep_pages_keep`).
"""

# SQL text only interpolates "?" placeholders
from __future__ import annotations

import sqlite3
import sys
from array import array
from bisect import bisect_left
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import xxhash

from watcher.store.db import translate_errors
from watcher.store.snapshots import key_array
from watcher.store.sweep_keys import window_sum

_BIG_ENDIAN = sys.byteorder == "big"
_SIGNED = 1 << 63


def keys_digest(keys: Collection[str]) -> int:
    """A signed 64-bit digest of ``keys`` in their order: their text, NUL between
    them, and their lengths (so a key holding a NUL itself cannot make two lists of
    as many keys read the same)."""
    digest = xxhash.xxh3_64("\x00".join(keys).encode("utf-8", "surrogatepass"))
    digest.update(array("q", map(len, keys)).tobytes())
    return digest.intdigest() - _SIGNED


def pack_fingerprints(prints: Iterable[int]) -> bytes:
    """Fingerprints as 8-byte little-endian signed integers, in order."""
    values = array("q", list(prints))  # (from a list: a dict view is read a third slower)
    if _BIG_ENDIAN:
        values.byteswap()
    return values.tobytes()


def unpack_fingerprints(blob: bytes) -> array[int]:
    values = array("q")
    values.frombytes(blob)
    if _BIG_ENDIAN:
        values.byteswap()
    return values


@dataclass(frozen=True, slots=True)
class SweepPage:
    """One window a sweep read: its page's records, in numbers."""

    after: str  # the previous page's last key; "" for the first page
    last: str  # the page's last (highest) key
    count: int
    fp_sum: int  # the exact sum of the records' fingerprints
    digest: int  # of the reply (watcher.gainsight.envelope.reply_digest)
    top: str | None  # the page's latest modified date (ISO), None when it had none
    keys: int  # keys_digest of the page's keys, in the order read
    fps: bytes  # pack_fingerprints of their fingerprints, same order
    #: ``PRAGMA data_version`` before the window was read (not stored): the commit
    #: checks the window again only if another connection wrote since.
    read_version: int | None = None

    def fingerprints(
        self, prints: dict[str, int], keys: int, packed: bytes
    ) -> dict[str, int] | None:
        """The stored fingerprints of a page read in this window (``prints``: its keys
        and fingerprints; ``keys`` and ``packed``: :func:`keys_digest` and
        :func:`pack_fingerprints` of them) when it has exactly the window's keys in the
        same order; else ``None``. ``prints`` itself when none differs."""
        if keys != self.keys or len(prints) != self.count or len(self.fps) != 8 * self.count:
            return None
        if packed == self.fps:
            return prints
        return dict(zip(prints, unpack_fingerprints(self.fps), strict=True))


class SweepPages:
    """The ``sweep_pages`` hints of full sweeps."""

    conn: sqlite3.Connection

    def sweep_page(self, source: str, after: str | None) -> SweepPage | None:
        """The row of the window that starts after ``after``, if there is one."""
        start = after or ""
        with translate_errors("read sweep pages"):
            row = self.conn.execute(
                "SELECT last, count, fp_sum, digest, top, keys, fps FROM sweep_pages "
                "WHERE source = ? AND after = ?",
                (source, start),
            ).fetchone()
        if row is None or row[5] is None or row[6] is None:
            return None
        last, count, fp_sum, digest, top, keys, fps = row
        return SweepPage(start, last, count, int(fp_sum), digest, top, keys, bytes(fps))

    def data_version(self) -> int:
        """SQLite's ``data_version``: it moves when another connection commits."""
        with translate_errors("read data version"):
            return _data_version(self.conn)

    def sweep_pages_keep(self, source: str, afters: Sequence[str]) -> None:
        """Drop ``source``'s rows for windows other than ``afters`` (those of the sweep
        that just read every page)."""
        with translate_errors("prune sweep pages"):
            self.conn.execute(
                "DELETE FROM sweep_pages WHERE source = ? "
                "AND after NOT IN (SELECT value FROM json_each(?))",
                (source, key_array(afters)),
            )


def drop_hints(
    conn: sqlite3.Connection, source: str, keys: Collection[str], window: SweepPage | None
) -> None:
    """Drop the rows whose window holds one of ``keys`` (written or deleted now), and
    those ``window`` overlaps (in the caller's transaction).

    Rows never overlap, so the row that may hold a key is the one starting last
    before it. A page's keys are all in its own window: one statement. Other keys
    (the fast lane's, a delete's) are placed among the source's rows (a few hundred
    at most) by bisection.
    """
    outside = keys
    if window is not None:
        # Those starting inside the window, then the one starting last before it if it
        # reaches in: two index look-ups. (One ``after < last AND last > after`` read
        # every row before the window, each page of a sweep: quadratic in its pages.)
        conn.execute(
            "DELETE FROM sweep_pages WHERE source = ? AND after >= ? AND after < ?",
            (source, window.after, window.last),
        )
        conn.execute(
            "DELETE FROM sweep_pages WHERE source = ?1 AND last > ?2 AND after = "
            "(SELECT after FROM sweep_pages WHERE source = ?1 AND after < ?2 "
            "ORDER BY after DESC LIMIT 1)",
            (source, window.after),
        )
        if keys and (min(keys) <= window.after or max(keys) > window.last):
            outside = [k for k in keys if not window.after < k <= window.last]
        else:
            outside = ()
    if not outside:
        return
    rows = conn.execute(
        "SELECT after, last FROM sweep_pages WHERE source = ? ORDER BY after", (source,)
    ).fetchall()
    if not rows:
        return
    afters = [after for after, _ in rows]
    hit: set[str] = set()
    for key in outside:
        at = bisect_left(afters, key) - 1  # the row starting last before the key
        if at >= 0 and key <= rows[at][1]:
            hit.add(afters[at])
    conn.executemany(
        "DELETE FROM sweep_pages WHERE source = ? AND after = ?",
        ((source, after) for after in sorted(hit)),
    )


def write_sweep_page(conn: sqlite3.Connection, source: str, page: SweepPage) -> None:
    """Keep ``page`` for the next sweep (in the caller's transaction, after the page's
    snapshots and :func:`drop_hints`), if the stored window is what it says."""
    # Another connection committed since the window was read: count it again.
    moved = page.read_version is None or page.read_version != _data_version(conn)
    if moved and window_sum(conn, source, page.after, page.last) != (page.count, page.fp_sum):
        return
    conn.execute(
        "INSERT OR REPLACE INTO sweep_pages "
        "(source, after, last, count, fp_sum, digest, top, keys, fps) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            source,
            page.after,
            page.last,
            page.count,
            str(page.fp_sum),
            page.digest,
            page.top,
            page.keys,
            page.fps,
        ),
    )


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
