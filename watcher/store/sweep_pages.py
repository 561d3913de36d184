"""Pages a full sweep read before: a page whose reply is the same again is settled
without looking at its records.

A sweep in key order reads the key space in windows, one a page
(:meth:`watcher.store.sweep_keys.SweepKeys.window`). When a window's page was read
the usual way, the store keeps a row for it (table ``sweep_pages``): where the window
starts (``after``, the previous page's last key; ``""`` for the first), its last key,
how many records the page had and the exact sum of their fingerprints, the page's
latest modified date, and the digest of the reply's bytes
(:func:`watcher.gainsight.envelope.reply_digest`).

The next sweep's page that starts at the same key with the same digest carries the
same records, so the same fingerprints. If the stored window still holds that many
snapshots with that sum, nothing changed there since - the same test as
:meth:`~watcher.store.sweep_keys.SweepKeys.window`, with the page's side known
without fingerprinting it - and the page is settled. Anything else (another digest,
a snapshot written or deleted in the window since, by the fast lane or anyone) reads
the page the usual way. A row is only ever a hint that this test checks: a stale one
costs nothing but its room, and each completed sweep drops the rows of windows it
no longer has (:meth:`SweepPages.sweep_pages_keep`).
"""

# SQL text only interpolates "?" placeholders
from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from watcher.store.db import translate_errors
from watcher.store.snapshots import key_array
from watcher.store.sweep_keys import window_sum


@dataclass(frozen=True, slots=True)
class SweepPage:
    """One window a sweep read: its page's records, in numbers."""

    after: str  # the previous page's last key; "" for the first page
    last: str  # the page's last (highest) key
    count: int
    fp_sum: int  # the exact sum of the records' fingerprints
    digest: int  # of the reply (watcher.gainsight.envelope.reply_digest)
    top: str | None  # the page's latest modified date (ISO), None when it had none


class SweepPages:
    """The ``sweep_pages`` hints of full sweeps."""

    conn: sqlite3.Connection

    def settled_page(self, source: str, after: str | None, digest: int) -> SweepPage | None:
        """The window starting after ``after`` if a page with reply ``digest`` was read
        there before and the stored window has not changed since; else ``None``."""
        start = after or ""
        with translate_errors("read sweep pages"):
            row = self.conn.execute(
                "SELECT last, count, fp_sum, top FROM sweep_pages "
                "WHERE source = ? AND after = ? AND digest = ?",
                (source, start, digest),
            ).fetchone()
            if row is None:
                return None
            last, count, fp_sum, top = row
            stored = window_sum(self.conn, source, start, last)
        if not count or stored != (count, int(fp_sum)):
            return None
        return SweepPage(start, last, count, int(fp_sum), digest, top)

    def sweep_pages_keep(self, source: str, afters: Sequence[str]) -> None:
        """Drop ``source``'s rows for windows other than ``afters`` (those of the sweep
        that just read every page)."""
        with translate_errors("prune sweep pages"):
            self.conn.execute(
                "DELETE FROM sweep_pages WHERE source = ? "
                "AND after NOT IN (SELECT value FROM json_each(?))",
                (source, key_array(afters)),
            )


def write_sweep_page(conn: sqlite3.Connection, source: str, page: SweepPage) -> None:
    """Keep ``page`` for the next sweep (in the caller's transaction)."""
    conn.execute(
        "INSERT OR REPLACE INTO sweep_pages "
        "(source, after, last, count, fp_sum, digest, top) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (source, page.after, page.last, page.count, str(page.fp_sum), page.digest, page.top),
    )
