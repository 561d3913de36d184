"""The WAL is copied into the database file on a thread of its own
(watcher.store.checkpoint): every few commits, never blocking the committing
connection, and a failure there is logged, never raised."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from sqlite_utils import Database
from structlog.testing import capture_logs

from watcher.clock import FakeClock
from watcher.store import PageCommit, Store
from watcher.store.checkpoint import CHECKPOINT_EVERY, Checkpointer


def _page(i: int) -> PageCommit:
    page = PageCommit()
    page.writes.extend(
        (f"K{i}-{n}", n, {"Gsid": f"K{i}-{n}", "Name": "x" * 200}) for n in range(50)
    )
    return page


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "watcher-checkpoint"]


def test_every_few_commits_the_wal_is_copied_in_the_background(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "w.db", clock=FakeClock())
    checkpointer = store.checkpointer
    assert checkpointer is not None
    before = len(_checkpoint_threads())
    for i in range(CHECKPOINT_EVERY - 1):
        store.commit("companies", _page(i))
    assert len(_checkpoint_threads()) == before  # a store that commits little starts none
    store.commit("companies", _page(CHECKPOINT_EVERY))
    assert len(_checkpoint_threads()) == before + 1
    checkpointer.flush()
    assert checkpointer.last is not None
    busy, logged, copied = checkpointer.last
    assert (busy, copied) == (0, logged)
    assert logged > 0  # every frame of the log is in the database file
    store.commit("companies", _page(99))  # the committing connection is not disturbed
    assert store.count_snapshots("companies") == 50 * (CHECKPOINT_EVERY + 1)
    store.close()
    assert len(_checkpoint_threads()) == before  # stopped and joined at close
    reopened = Store.open(tmp_path / "w.db", clock=FakeClock())
    assert reopened.count_snapshots("companies") == 50 * (CHECKPOINT_EVERY + 1)
    reopened.close()


def test_a_memory_store_has_no_checkpointer() -> None:
    store = Store(Database(memory=True), clock=FakeClock())
    assert store.checkpointer is None
    store.commit("companies", _page(1))
    store.close()


def test_a_failing_checkpoint_is_logged_once_and_raises_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "not-a-database.db"
    broken.write_bytes(b"this is not an SQLite file" * 100)
    checkpointer = Checkpointer(str(broken), every=1)
    with capture_logs() as logs:
        checkpointer.flush()
        checkpointer.flush()
    checkpointer.close()
    warnings = [e for e in logs if e["event"] == "store.checkpoint_failed"]
    assert len(warnings) == 1
    assert "not a database" in warnings[0]["error"]
    assert checkpointer.last is None


def test_a_reader_on_an_old_snapshot_only_delays_the_copy(tmp_path: Path) -> None:
    """PASSIVE: a reader still in a transaction keeps some frames in the log; the
    checkpoint copies what it can, blocks no one, and a later one copies the rest."""
    store = Store.open(tmp_path / "w.db", clock=FakeClock())
    checkpointer = store.checkpointer
    assert checkpointer is not None
    store.commit("companies", _page(1))
    reader = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM snapshots").fetchone()  # holds its snapshot
    store.commit("companies", _page(2))
    checkpointer.flush()
    assert checkpointer.last is not None
    assert checkpointer.last[2] < checkpointer.last[1]  # the reader's frames wait
    reader.execute("COMMIT")
    reader.close()
    checkpointer.flush()
    assert checkpointer.last is not None
    assert checkpointer.last[2] == checkpointer.last[1]
    store.close()


def test_the_checkpointer_never_creates_a_missing_file(tmp_path: Path) -> None:
    gone = tmp_path / "deleted.db"
    checkpointer = Checkpointer(str(gone), every=1)
    with capture_logs() as logs:
        checkpointer.flush()
    checkpointer.close()
    assert not gone.exists()
    assert [e["event"] for e in logs] == ["store.checkpoint_failed"]


def test_a_path_with_spaces_and_url_characters_is_checkpointed(tmp_path: Path) -> None:
    folder = tmp_path / "a store #1 ?x"
    folder.mkdir()
    store = Store.open(folder / "w.db", clock=FakeClock())
    checkpointer = store.checkpointer
    assert checkpointer is not None
    store.commit("companies", _page(1))
    checkpointer.flush()
    assert checkpointer.last is not None
    assert checkpointer.last[0] == 0
    assert checkpointer.last[1] == checkpointer.last[2] > 0
    store.close()
