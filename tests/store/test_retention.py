"""Files owner-only and retention (issue 12): the database is 0600 whatever the umask;
old events, deliveries and polls are purged, and their data leaves the file."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.rules.events import event
from watcher.cli import main
from watcher.clock import FakeClock
from watcher.config import StoreConfig, parse_config
from watcher.errors import ConfigError
from watcher.store.db import open_database
from watcher.store.outbox import Outbox
from watcher.store.retention import Retention, empty_wal, purge, purge_file
from watcher.store.store import PageCommit, Store, Write

START = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86400.0


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_wal_and_shm_are_owner_only_whatever_the_umask(
    tmp_path: Path, umask_022: None
) -> None:
    store = Store.open(tmp_path / "state" / "watcher.db", clock=FakeClock())
    try:
        store.commit("companies", PageCommit(events=[event("created", after={"Name": "A"})]))
        db = tmp_path / "state" / "watcher.db"
        for path in (db, db.with_name("watcher.db-wal"), db.with_name("watcher.db-shm")):
            assert mode(path) == 0o600, path
    finally:
        store.close()


def test_an_existing_world_readable_database_is_made_owner_only(
    tmp_path: Path, umask_022: None
) -> None:
    path = tmp_path / "watcher.db"
    open_database(path).conn.close()
    os.chmod(path, 0o644)
    open_database(path).conn.close()
    assert mode(path) == 0o600


def routed(_event: object) -> list[tuple[str, str]]:
    return [("all", "crm")]


def at(clock: FakeClock, when: datetime) -> None:
    clock.advance((when - clock.now()).total_seconds())


MARKER = "Purged-Customer-Name-7f3a"


def populate(tmp_path: Path) -> tuple[Store, FakeClock, dict[str, int]]:
    """Four old events (day 0) with delivered / pending / dead / no deliveries, a
    recent one (day 100), and polls on day 0 and day 100."""
    clock = FakeClock(START)
    store = Store.open(tmp_path / "watcher.db", clock=clock)
    outbox = Outbox(store.db)
    seqs: dict[str, int] = {}
    for name in ("delivered", "pending", "dead", "suppressed"):
        ev = event("created", key=name, after={"Name": f"{MARKER} {name}" * 40},
                   time="2026-01-01T00:00:00.000Z")  # fmt: skip
        ev["id"] = f"evt-{name}"
        (stored,) = store.commit("companies", PageCommit(events=[ev]).route(routed))
        seqs[name] = stored["sequence"]
    rows = {r.event_id: r for r in outbox.list_deliveries()}
    outbox.mark_delivered([rows["evt-delivered"].id], clock.now())
    outbox.mark_dead(rows["evt-dead"].id, error="gone")
    outbox.mark_suppressed(rows["evt-suppressed"].id, reason="throttled")
    store.start_poll("p-old", "companies", "full", "scheduled")
    store.finish_poll("p-old", outcome="ok")
    at(clock, START + timedelta(days=100))
    recent = event("created", key="recent", after={"Name": "Recent"},
                   time="2026-04-11T00:00:00.000Z")  # fmt: skip
    recent["id"] = "evt-recent"
    store.commit("companies", PageCommit(events=[recent]).route(routed))
    store.start_poll("p-new", "companies", "full", "scheduled")
    store.finish_poll("p-new", outcome="ok")
    return store, clock, seqs


def remaining(store: Store) -> tuple[set[str], set[str], set[str]]:
    conn = store.conn
    events = {r[0] for r in conn.execute("SELECT id FROM events")}
    deliveries = {r[0] for r in conn.execute("SELECT event_id FROM deliveries")}
    polls = {r[0] for r in conn.execute("SELECT id FROM polls")}
    return events, deliveries, polls


def test_purge_deletes_what_retention_no_longer_keeps(tmp_path: Path) -> None:
    """Day 100 with the defaults (events 90d, delivered 30d, polls 30d, dead 90d): the
    delivered, suppressed and dead deliveries go with their events; the pending one
    keeps its event; recent rows stay."""
    store, clock, _ = populate(tmp_path)
    try:
        retention = Retention.from_config(StoreConfig())
        dry = purge(store.db, retention, clock.now(), dry_run=True)
        assert (dry.events, dry.delivered, dry.dead, dry.polls) == (3, 2, 1, 1)
        everything = ("delivered", "pending", "dead", "suppressed", "recent")
        assert remaining(store)[0] == {f"evt-{n}" for n in everything}
        result = purge(store.db, retention, clock.now())
        assert (result.events, result.delivered, result.dead, result.polls) == (3, 2, 1, 1)
        events, deliveries, polls = remaining(store)
        assert events == {"evt-pending", "evt-recent"}
        assert deliveries == {"evt-pending", "evt-recent"}
        assert polls == {"p-new"}
    finally:
        store.close()


def test_a_dead_delivery_keeps_its_event_until_retain_dead(tmp_path: Path) -> None:
    store, clock, _ = populate(tmp_path)
    try:
        keep_dead = Retention(events_s=90 * DAY, delivered_s=30 * DAY, polls_s=30 * DAY,
                              dead_s=200 * DAY)  # fmt: skip
        purge(store.db, keep_dead, clock.now())
        events, deliveries, _ = remaining(store)
        assert "evt-dead" in events
        assert "evt-dead" in deliveries
    finally:
        store.close()


@pytest.mark.parametrize("legacy", [False, True])
def test_purged_data_leaves_the_file_and_the_space_is_given_back(
    tmp_path: Path, legacy: bool
) -> None:
    """No byte of a purged record stays in the database or its WAL, and the file shrinks
    (a file from before retention is converted once); the cursor never goes back."""
    store, clock, seqs = populate(tmp_path)
    if legacy:
        store.conn.execute("PRAGMA auto_vacuum = NONE")
        store.conn.execute("VACUUM")
        assert store.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    try:
        # pad the file so the purge frees whole pages
        for n in range(200):
            ev = event("created", key=f"pad{n}", after={"Name": MARKER + "x" * 2000},
                       time="2026-01-01T00:00:00.000Z")  # fmt: skip
            ev["id"] = f"evt-pad{n}"
            store.commit("companies", PageCommit(events=[ev]))
        store.conn.execute("DELETE FROM deliveries WHERE event_id LIKE 'evt-pad%'")
        assert store.checkpointer is not None
        store.checkpointer.flush()  # the background checkpoint of the last commits is done
        assert empty_wal(store.conn)
        before = (tmp_path / "watcher.db").stat().st_size
        result = purge(store.db, Retention.from_config(StoreConfig()), clock.now())
        assert result.events == 203
        assert result.freed_bytes > 400_000
        assert (tmp_path / "watcher.db").stat().st_size <= before - result.freed_bytes
        assert (tmp_path / "watcher.db-wal").stat().st_size == 0
        assert store.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        data = b""
        for name in ("watcher.db", "watcher.db-wal"):
            path = tmp_path / name
            if path.exists():
                data += path.read_bytes()
        assert MARKER.encode() not in data.replace(b"Purged-Customer-Name-7f3a pending", b"")
        next_event = event("created", key="next", after={"Name": "N"})
        next_event["id"] = "evt-next"
        (stored,) = store.commit("companies", PageCommit(events=[next_event]))
        assert stored["sequence"] > max(seqs.values()) + 200
    finally:
        store.close()


def test_watcher_purge_cli_dry_run_then_for_real(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _, _ = populate(tmp_path)
    store.close()
    monkeypatch.setenv("K", "x")
    (tmp_path / "watcher.toml").write_text(
        '[gainsight]\nbase_url = "https://acme.gainsightcloud.com"\naccess_key_env = "K"\n'
        '[store]\npath = "watcher.db"\nretain_events = "1h"\nretain_delivered = "1h"\n'
        'retain_polls = "1h"\nretain_dead = "1h"\n'
    )
    argv = ["--config", str(tmp_path / "watcher.toml"), "purge"]
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete: 3 event(s) older than 1h" in out
    assert "1 dead delivery(ies)" in out
    assert main(argv) == 0
    assert "deleted: 3 event(s)" in capsys.readouterr().out
    store = Store.open(tmp_path / "watcher.db")
    try:
        assert remaining(store)[0] == {"evt-pending", "evt-recent"}  # pending deliveries
    finally:
        store.close()


@pytest.mark.parametrize(
    "key", ["retain_events", "retain_delivered", "retain_polls", "retain_dead"]
)
def test_retention_settings_are_validated(key: str) -> None:
    base = {"gainsight": {"base_url": "https://acme.gainsightcloud.com", "access_key_env": "K"}}
    with pytest.raises(ConfigError, match=rf"store.{key}: .*too short"):
        parse_config({**base, "store": {key: "5m"}})
    with pytest.raises(ConfigError, match=rf"store.{key}: .*not understood"):
        parse_config({**base, "store": {key: "ninety days"}})
    assert StoreConfig().retain_events == "90d"


async def test_the_daemon_purges_once_a_day(tmp_path: Path) -> None:
    """Ten minutes after start, then daily: old rows go, ``store.purged`` is logged."""
    from tests.daemon.test_runner import CONFIG, FakePoller, make_daemon, write_config
    from watcher.daemon import runner

    store, clock, _ = populate(tmp_path)
    store.close()
    hourly = CONFIG.replace('"*/2 * * * *"', '"0 * * * *"').replace('"*/30 * * * *"', '"0 * * * *"')
    write_config(tmp_path, hourly)
    poller = FakePoller(clock)
    daemon = make_daemon(tmp_path, clock, poller)
    with capture_logs() as logs:
        await daemon.run(until=clock.now() + timedelta(days=1, hours=1))
    purged = [e for e in logs if e["event"] == "store.purged"]
    assert len(purged) == 2
    assert purged[0]["events"] == 3
    assert runner.PURGE_EVERY_S == DAY
    check = purge_file(tmp_path / "watcher.db", StoreConfig(), clock.now(), dry_run=True)
    assert check.rows == 0


def test_a_record_deleted_in_gainsight_leaves_no_bytes_after_the_next_purge(
    tmp_path: Path,
) -> None:
    """Its snapshot is deleted when the delete is seen; by the next purge nothing of it
    is left in the database or the WAL (deleted cells zeroed, free pages given back)."""
    clock = FakeClock(START)
    store = Store.open(tmp_path / "watcher.db", clock=clock)
    try:
        secret = "Deleted-Record-Data-51c2"
        big = {"Name": secret + "y" * 3000}
        writes: list[Write] = [(f"K{n}", n, {"Gsid": f"K{n}", **big}) for n in range(50)]
        writes.append(("KEEP", 99, {"Gsid": "KEEP", "Name": "kept"}))
        store.commit("companies", PageCommit(writes=writes))
        store.commit("companies", PageCommit(deletes=[f"K{n}" for n in range(50)]))
        purge(store.db, Retention.from_config(StoreConfig()), clock.now())
        data = b"".join(
            (tmp_path / name).read_bytes()
            for name in ("watcher.db", "watcher.db-wal")
            if (tmp_path / name).exists()
        )
        assert secret.encode() not in data
        assert b"kept" in data
    finally:
        store.close()


def test_emptying_the_wal_tries_again_while_another_connection_holds_it(tmp_path: Path) -> None:
    """A reader on an old snapshot (or another checkpoint) makes SQLite answer busy: the
    WAL is left for the next try, and emptied once the other connection is done."""
    store = Store.open(tmp_path / "w.db", clock=FakeClock())
    store.commit("companies", PageCommit(events=[event("created", key="k1")]))
    reader = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM events").fetchone()
    store.commit("companies", PageCommit(events=[event("created", key="k2")]))
    conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None)  # no busy timeout
    try:
        assert not empty_wal(conn, tries=2, wait_s=0)
        reader.execute("COMMIT")
        assert empty_wal(conn, tries=1)
        assert (tmp_path / "w.db-wal").stat().st_size == 0
    finally:
        reader.close()
        conn.close()
        store.close()
