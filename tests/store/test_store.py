"""The SQLite store: migrations, atomic commits, sequence, routing, error translation."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import cast

import pytest
from sqlite_utils import Database

from watcher.clock import FakeClock
from watcher.core.events import CloudEvent
from watcher.errors import StoreError, StoreLockedError
from watcher.store import PageCommit, Store, delivery_id, open_database
from watcher.store.db import MIGRATIONS, classify, migrate, schema_version


def event(eid: str, subject: str = "K1", kind: str = "updated") -> CloudEvent:
    return cast(
        CloudEvent,
        {
            "specversion": "1.0",
            "id": eid,
            "source": "gainsight://h/companies",
            "type": f"gainsight.company.{kind}",
            "subject": subject,
            "time": "2026-11-23T16:00:00.000Z",
            "datacontenttype": "application/json",
            "data": {"key": subject},
        },
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "w.db", clock=FakeClock())


def test_migrations_are_versioned_and_idempotent(tmp_path: Path) -> None:
    """Opening twice applies each migration once; the file is in WAL mode."""
    path = tmp_path / "w.db"
    Store.open(path, clock=FakeClock()).close()
    db = open_database(path)
    assert migrate(db, FakeClock().now) == MIGRATIONS[-1][0]
    assert db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"snapshots", "polls", "events", "deliveries", "pauses", "source_state"} <= set(
        db.table_names()
    )


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer watcher is not touched."""
    db = open_database(tmp_path / "w.db")
    migrate(db, FakeClock().now)
    db.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'x')")
    with pytest.raises(StoreError, match="newer"):
        migrate(db, FakeClock().now)
    assert schema_version(db.conn) == 999


def test_commit_writes_snapshots_events_and_deliveries_with_increasing_sequence(
    tmp_path: Path,
) -> None:
    """One commit: snapshots, events (sequence 1, 2, ...) and one delivery per routed pair
    (the routes come with the commit: the store matches nothing)."""
    pairs = [("arr-drop", "crm"), ("arr-drop", "slack")]
    store = Store.open(tmp_path / "w.db", clock=FakeClock())
    out = store.commit(
        "companies",
        PageCommit(
            writes=[("K1", 11, {"Gsid": "K1"}), ("K2", 22, {"Gsid": "K2"})],
            events=[event("e1"), event("e2", "K2")],
            routes=[pairs, pairs],
            poll_id="p",
        ),
    )
    assert [e["sequence"] for e in out] == [1, 2]
    out2 = store.commit("companies", PageCommit(events=[event("e3")], routes=[pairs]))
    assert out2[0]["sequence"] == 3
    assert store.fingerprints("companies", ["K1", "K2", "K3"]) == {"K1": 11, "K2": 22}
    rows = list(store.db.query("SELECT * FROM deliveries ORDER BY event_sequence, sink"))
    assert len(rows) == 6
    assert rows[0]["id"] == delivery_id("e1", "arr-drop", "crm")
    assert rows[0]["order_key"] == "companies:K1"
    assert rows[0]["status"] == "pending"
    assert rows[0]["next_attempt_at"] == FakeClock().now().timestamp()
    stored = store.get_event("e1")
    assert stored is not None
    assert json.loads(stored.body)["sequence"] == 1


def test_a_failing_delivery_insert_rolls_back_the_whole_commit(store: Store) -> None:
    """Snapshot change, event and deliveries commit together or not at all."""
    store.conn.execute(
        "CREATE TEMP TRIGGER refuse BEFORE INSERT ON deliveries "
        "BEGIN SELECT RAISE(ABORT, 'delivery refused'); END"
    )
    page = PageCommit(writes=[("K1", 1, {})], events=[event("e1")], routes=[[("r", "s")]])
    with pytest.raises(StoreError, match="delivery refused"):
        store.commit("companies", page)
    assert store.count_snapshots("companies") == 0
    assert store.list_events() == []
    assert not store.conn.in_transaction


def test_a_commit_keeps_the_delivery_ids_of_earlier_versions(store: Store) -> None:
    """A poll commit's delivery id is sha256(event, rule, sink) as before: a daemon
    upgraded with deliveries pending, re-running the interrupted poll's commit, neither
    queues the delivery twice nor loses it; a replay's ids differ every time."""
    import hashlib

    old = hashlib.sha256(b"e1\x00arr-drop\x00crm").hexdigest()[:32]
    assert delivery_id("e1", "arr-drop", "crm") == old
    first = delivery_id("e1", "arr-drop", "crm", "replay-1")
    assert first not in (old, delivery_id("e1", "arr-drop", "crm", "replay-2"))
    store.conn.execute(
        "INSERT INTO deliveries (id, event_sequence, event_id, rule, sink, order_key, status, "
        "attempts, next_attempt_at, created_at) VALUES (?, 1, 'e1', 'arr-drop', 'crm', "
        "'companies:K1', 'pending', 2, 0, '2026-01-01T00:00:00.000Z')",
        (old,),
    )
    store.commit("companies", PageCommit(events=[event("e1")], routes=[[("arr-drop", "crm")]]))
    rows = list(store.db.query("SELECT id, attempts FROM deliveries"))
    assert rows == [{"id": old, "attempts": 2}]


def test_sequence_never_reuses_numbers_after_a_rollback(store: Store) -> None:
    """AUTOINCREMENT: a committed sequence is never handed out twice."""
    store.commit("s", PageCommit(events=[event("e1"), event("e2")]))
    store.conn.execute("DELETE FROM events WHERE sequence = 2")
    out = store.commit("s", PageCommit(events=[event("e3")]))
    assert out[0]["sequence"] == 3


def test_list_events_filters(store: Store) -> None:
    """--source, --type (full or change), --since and --limit (newest) filter the log."""
    store.commit("a", PageCommit(events=[event("e1"), event("e2", kind="deleted")]))
    store.commit("b", PageCommit(events=[event("e3")]))
    assert [e.id for e in store.list_events(source="a")] == ["e1", "e2"]
    assert [e.id for e in store.list_events(type="deleted")] == ["e2"]
    assert [e.id for e in store.list_events(type="gainsight.company.updated")] == ["e1", "e3"]
    assert [e.id for e in store.list_events(limit=2, newest=True)] == ["e2", "e3"]
    assert [e.id for e in store.list_events(since="2026-11-24T00:00:00.000Z")] == []
    assert store.get_event("3") is not None
    assert store.get_event("nope") is None


def test_poll_history_and_state(store: Store) -> None:
    """A poll row records mode, trigger, counts and outcome; state columns round-trip."""
    store.start_poll("p1", "companies", "full", "manual")
    store.finish_poll("p1", outcome="ok", counts={"pages": 3, "records": 250, "api_calls": 4})
    (row,) = store.polls("companies")
    assert row["mode"] == "full"
    assert row["trigger"] == "manual"
    assert (row["pages"], row["records"], row["api_calls"], row["outcome"]) == (3, 250, 4, "ok")
    assert row["finished_at"] is not None
    store.start_poll("p2", "companies", "full", "scheduled")
    assert store.mark_interrupted("companies") == 1
    store.set_state("companies", watermark="2026-01-01T00:00:00.000Z")
    assert store.state("companies").watermark == "2026-01-01T00:00:00.000Z"
    with pytest.raises(ValueError, match="unknown"):
        store.set_state("companies", nope=1)


def test_a_locked_database_raises_store_locked(tmp_path: Path) -> None:
    """Another writer holding the lock surfaces as StoreLockedError, not sqlite3."""
    path = tmp_path / "w.db"
    store = Store.open(path, clock=FakeClock())
    store.conn.execute("PRAGMA busy_timeout = 0")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreLockedError, match="locked"):
            store.commit("s", PageCommit(writes=[("K", 1, {})]))
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_sqlite_errors_are_classified() -> None:
    """Disk full and other sqlite3 errors become StoreError subclasses with a hint."""
    full = classify(sqlite3.OperationalError("database or disk is full"), "commit")
    assert type(full).__name__ == "StoreFullError"
    assert type(classify(sqlite3.DatabaseError("file is not a database"), "x")) is StoreError


def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open"):
        open_database(blocker / "sub" / "w.db")


def test_in_memory_database_works() -> None:
    store = Store(Database(memory=True), clock=FakeClock())
    store.commit("s", PageCommit(writes=[("K", 1, {"a": 1})]))
    assert dict(store.iter_snapshots("s")) == {"K": {"a": 1}}


def test_lone_surrogates_are_stored_as_escapes(store: Store) -> None:
    """A "\\ud800" value (legal JSON escape) is stored and emitted, not refused by SQLite."""
    ev = event("e1")
    ev["data"]["after"] = {"Name": "\ud800"}
    out = store.commit("s", PageCommit(writes=[("K", 1, {"Name": "\ud800"})], events=[ev]))
    assert out[0]["data"]["after"]["Name"] == "\ud800"
    assert store.records("s", ["K"]) == {"K": {"Name": "\ud800"}}  # as stored
    stored = store.get_event("e1")
    assert stored is not None
    assert "\\ud800" in stored.body
    assert stored.cloudevent()["data"]["after"]["Name"] == "\ud800"
    ok = event("e2")
    ok["data"]["after"] = {"Name": "Zoë"}
    store.commit("s", PageCommit(events=[ok]))
    stored_ok = store.get_event("e2")
    assert stored_ok is not None
    assert "Zoë" in stored_ok.body  # ordinary text stays readable UTF-8


def test_a_deleted_database_file_fails_the_next_commit(tmp_path: Path) -> None:
    """Writes to an unlinked file would vanish at the next start: refuse them, say why."""
    path = tmp_path / "w.db"
    store = Store.open(path, clock=FakeClock())
    store.commit("s", PageCommit(writes=[("K", 1, {})]))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreError, match="deleted or replaced"):
        store.commit("s", PageCommit(writes=[("K2", 2, {})]))
    with pytest.raises(StoreError, match="deleted or replaced"):
        store.start_poll("p", "s", "full", "manual")


def test_get_event_by_a_non_ascii_digit_finds_nothing(store: Store) -> None:
    """`events show ²` (a digit to str.isdigit, not to int) is an unknown id, not a crash."""
    store.commit("a", PageCommit(events=[event("e1")]))
    assert store.get_event("²") is None
    assert store.get_event("1") is not None


def test_snapshots_remember_the_field_set_they_were_taken_with(tmp_path: Path) -> None:
    """A version-2 database gains field sets; its old snapshots count as taken with
    the first field set recorded, new writes carry their own."""
    path = tmp_path / "w.db"
    db = open_database(path)
    migrate(db, FakeClock().now, MIGRATIONS[:2])
    db.conn.execute(
        "INSERT INTO snapshots (source, key, fp, body, updated_at) "
        "VALUES ('companies', 'K0', 1, '{\"Gsid\":\"K0\"}', 'x')"
    )
    db.conn.close()
    store = Store.open(path, clock=FakeClock())
    first = store.field_set("companies", ["Gsid", "Nps"])
    assert store.field_set("companies", ["Nps", "Gsid", "Nps"]) == first  # order, repeats
    assert store.field_set("companies", ["Gsid", "Arr"], create=False) is None
    second = store.field_set("companies", ["Gsid", "Arr"])
    assert first is not None
    assert second is not None
    assert second != first
    page = PageCommit(field_set=second)
    page.writes.append(("K1", 2, {"Gsid": "K1"}))
    store.commit("companies", page)
    rows = store.snapshot_rows("companies", ["K0", "K1"])
    sets = store.field_sets("companies")
    assert sets[rows["K0"][1]] == frozenset({"Gsid", "Nps"})  # legacy: the first field set
    assert sets[rows["K1"][1]] == frozenset({"Gsid", "Arr"})
    assert store.field_sets("other") == {}


def test_a_version_8_store_trades_the_fingerprint_index_for_a_keys_index(
    tmp_path: Path,
) -> None:
    """Schema 9: an update of a snapshot writes its own page and no index page (the
    fingerprint index is dropped); counts and key scans read the keys index."""
    path = tmp_path / "w.db"
    db = open_database(path)
    migrate(db, FakeClock().now, tuple(m for m in MIGRATIONS if m[0] <= 8))
    db.conn.execute(
        "INSERT INTO snapshots (source, key, fp, body, updated_at) "
        "VALUES ('companies', 'K0', 1, '{\"Gsid\":\"K0\"}', 'x')"
    )
    db.conn.close()
    store = Store.open(path, clock=FakeClock())
    indexes = {
        name
        for (name,) in store.conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'snapshots' "
            "AND sql IS NOT NULL"
        )
    }
    assert indexes == {"snapshots_keys"}
    plan = " ".join(
        str(row[-1])
        for row in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM snapshots WHERE source = 'companies'"
        )
    )
    assert "snapshots_keys" in plan
    assert store.count_snapshots("companies") == 1
    assert store.fingerprints("companies", ["K0", "K9"]) == {"K0": 1}


def test_seen_mark_returns_keys_an_earlier_page_had(store: Store) -> None:
    """Keys marked by an earlier page come back; a page's own keys do not."""
    store.seen_reset("companies")
    assert store.seen_mark("companies", ["A", "B"], 1) == []
    assert store.seen_mark("companies", ["C", "B", "D"], 2) == ["B"]
    assert store.missing_collect("companies") == 0


def test_a_new_store_file_has_8k_pages_and_incremental_vacuum(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "new.db", clock=FakeClock())
    try:
        assert store.conn.execute("PRAGMA page_size").fetchone()[0] == 8192
        assert store.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    finally:
        store.close()
