"""A sweep in key order keeps no seen-set: each page's window of the key space is one
range scan, and the stored keys a window's page lacks are missing. A page that breaks
the order (rows moved under offset paging) hands the sweep over to the seen-set, and
what the windows already found missing stays missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.poll.helpers import Harness, company, source_config, tenant


def _key(i: int) -> str:
    return str(company(i)["Gsid"])


async def test_deletes_inside_windows_between_pages_and_after_the_last_are_found(
    tmp_path: Path,
) -> None:
    feed = tenant(40)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config(max_delete_fraction=1.0)
    await h.poller.poll(src)
    reads: list[str] = []
    h.store.conn.set_trace_callback(reads.append)
    gone = [_key(0), _key(5), _key(10), _key(19), _key(20), _key(39)]
    for key in gone:  # the first key, inside pages, at page edges, the last key
        feed.records.pop(key)

    result = await h.poller.poll(src)

    h.store.conn.set_trace_callback(None)
    assert (result.missing, result.deleted, result.duplicates) == (6, 6, 0)
    assert sorted(h.changes()) == sorted(("deleted", k) for k in gone)
    assert not [s for s in reads if "temp.seen" in s and s.startswith("INSERT")]


async def test_rows_moved_by_an_insert_hand_over_to_the_seen_set(tmp_path: Path) -> None:
    """After page 1 was read a key is created inside its window: every later row moves
    one place on, page 2 starts with page 1's last row again. That copy is dropped as
    a duplicate, a key deleted inside page 1's window before the sweep is still
    deleted, and the new key is created by the next sweep."""
    feed = tenant(30)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    feed.records.pop(_key(5))  # page 1's window: missing when its range is scanned
    feed.records.pop(_key(15))  # page 2's
    new = company(3, Gsid=f"{_key(3)}x")  # sorts between keys 3 and 4

    def insert(number: int) -> None:
        if number == 2:
            feed.records[new["Gsid"]] = new

    feed.before_page = insert
    result = await h.poller.poll(src)
    feed.before_page = None

    assert result.duplicates == 1  # page 1's last row, read again on page 2
    assert (result.deleted, result.created, result.updated) == (2, 0, 0)
    assert sorted(h.changes()) == [("deleted", _key(5)), ("deleted", _key(15))]
    later = await h.poller.poll(src)
    assert (later.created, later.deleted, later.duplicates) == (1, 0, 0)


async def test_a_dry_run_sweep_finds_the_same_missing_keys(tmp_path: Path) -> None:
    feed = tenant(30)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    feed.records.pop(_key(12))
    dry = await h.poller.poll(src, dry_run=True)
    real = await h.poller.poll(src)
    assert (dry.missing, dry.deleted) == (real.missing, real.deleted) == (1, 1)


async def test_a_steady_window_reads_its_fingerprints_and_no_key(
    tmp_path: Path,
) -> None:
    """Nothing changed: each window's stored fingerprints, read in key order from the
    primary key, equal the page's, so no key is read into Python; one changed record
    makes its window look that one key up. (Pages without a digest: pages with one are
    settled before, test_sweep_pages.)"""
    feed = tenant(40)
    feed.digests = False
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    reads: list[str] = []
    h.store.conn.set_trace_callback(reads.append)
    steady = await h.poller.poll(src)
    assert (steady.updated, steady.missing) == (0, 0)
    assert len([s for s in reads if s.startswith("SELECT fp FROM snapshots")]) == 4
    assert not [s for s in reads if s.startswith("SELECT key, fp FROM snapshots")]

    reads.clear()
    key = _key(25)
    feed.records[key] = company(25, Arr=1.5)
    changed = await h.poller.poll(src)
    h.store.conn.set_trace_callback(None)
    assert changed.updated == 1
    # Each window's fingerprints alone, then in the changed one the key that differs.
    assert len([s for s in reads if s.startswith("SELECT fp FROM snapshots")]) == 4
    by_key = [s for s in reads if s.startswith("SELECT key, fp FROM snapshots")]
    assert len(by_key) == 1
    assert "json_each" in by_key[0]
    assert h.changes() == [("updated", key)]


async def test_a_key_gone_and_another_come_in_one_window_are_both_found(
    tmp_path: Path,
) -> None:
    """The window holds as many snapshots as its page has keys, but not the same
    keys: the new key is not stored, so the window's keys are read and the gone one
    is missing."""
    feed = tenant(40)
    feed.digests = False
    h = Harness(tmp_path / "w.db", feed)
    src = source_config(max_delete_fraction=1.0)
    await h.poller.poll(src)
    gone = _key(13)
    feed.records.pop(gone)
    new = company(13, Gsid=f"{_key(13)}x")  # sorts between keys 13 and 14: same window
    feed.records[new["Gsid"]] = new
    reads: list[str] = []
    h.store.conn.set_trace_callback(reads.append)

    result = await h.poller.poll(src)

    h.store.conn.set_trace_callback(None)
    assert (result.created, result.deleted) == (1, 1)
    assert sorted(h.changes()) == sorted([("created", new["Gsid"]), ("deleted", gone)])
    window_reads = [s for s in reads if s.startswith("SELECT key, fp FROM snapshots WHERE")]
    assert any("ORDER BY key" in s for s in window_reads)  # the whole window, once


def test_the_window_sum_is_exact_where_sqlites_sum_would_overflow() -> None:
    """Negative fingerprints too: SQLite's sums of the two 32-bit halves (``>>`` and
    ``&``), put together, are Python's exact sum, even where ``SUM(fp)`` overflows."""
    import sqlite3

    prints = [-1, -(2**63), 2**63 - 1, -123456789012345, 98765432109876, 0, 7]
    prints += [2**63 - 1 - i for i in range(5000)]  # far past 64 bits in all
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (fp INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?)", [(p,) for p in prints])
    with pytest.raises(sqlite3.OperationalError, match="overflow"):
        conn.execute("SELECT SUM(fp) FROM t").fetchone()
    high, low = conn.execute("SELECT SUM(fp >> 32), SUM(fp & 4294967295) FROM t").fetchone()
    assert (high << 32) + low == sum(prints)
