"""The fault matrix, end to end: under each fault, nothing is lost.

Each case runs random changes in the simulated tenant (over loopback, FakeClock)
through the real client, poll engine and SQLite store while the fault is on, then
turns it off and settles. Verdict (tests/reliability/verify.py): the events,
composed per key, equal the tenant's net changes - no change without an event, no
event without a change, no false delete - and the store equals the tenant. Each
case also asserts the fault's own signal: the retry that helped, or the clear
error the failed poll carried. Unit-level behaviour of each fault is tested next
to its code (tests/gainsight, tests/delivery, tests/store); these are the
"nothing lost" checks across all of them.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.harness import COMPANIES, CTAS, E2E, SECRET, SOURCES, e2e
from watcher.errors import StoreError
from watcher.store import Store
from watcher.store.store import PageCommit
from watcher.testing.receivers import SlackReceiver, WebhookReceiver

pytestmark = pytest.mark.slow


def _retried(h: E2E) -> bool:
    return h.client.stats.retries > 0


SHORT = "short pages (valid JSON, half the rows)"
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], Callable[[E2E], bool]]] = {
    # name: (sim settings, client options, the fault's own signal)
    "429 storm, no Retry-After": (
        {"requests_per_minute": 8},
        {"max_retries": 10},
        lambda h: h.client.stats.rate_limited > 0,
    ),
    "20% 5xx": ({"error_rate": 0.2}, {}, _retried),
    "malformed JSON": ({"malformed_rate": 0.2}, {}, _retried),
    "truncated pages": ({"truncated_rate": 0.2}, {}, _retried),
    SHORT: ({"short_page_rate": 0.2}, {}, lambda h: True),
    "result:false replies": (
        {"result_false_rate": 0.2},
        {},
        lambda h: bool(h.failures) and all("GU_1101" in f for f in h.failures),
    ),
    "unstable CTA paging + mutations between pages": (
        {"cockpit_unstable_order": True, "mutations_between_pages": 2},
        {},
        lambda h: True,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_under_each_api_fault_no_change_is_lost_and_nothing_false(
    tmp_path: Path, name: str
) -> None:
    """Faults on during random changes and polls; after settling, events == truth."""
    sim_settings, client_options, signal = CASES[name]
    async with e2e(tmp_path, seed=3, client_options=client_options) as h:
        await h.baseline()
        for key, value in sim_settings.items():
            target = h.sim.tenant.faults if hasattr(h.sim.tenant.faults, key) else None
            setattr(target or h.sim.tenant.options, key, value)
        await h.rounds(3)
        h.sim.tenant.options.requests_per_minute = 1_000_000
        await h.settle()
        verdict = h.verdict()
        assert verdict.violations == [], verdict.violations
        assert verdict.changed_keys > 10
        assert signal(h), f"{name}: the fault left no trace (failures: {h.failures[:3]})"


async def test_timeouts_fail_the_poll_clearly_then_the_next_poll_catches_up(
    tmp_path: Path,
) -> None:
    """Replies slower than the timeout: polls fail naming the timeout; once the tenant
    answers again, the changes made meanwhile all arrive."""
    async with e2e(tmp_path, seed=5, client_options={"timeout_s": 0.05, "max_retries": 1}) as h:
        await h.baseline()
        h.sim.tenant.faults.latency = 0.2  # server side: each data reply waits (real time)
        h.sim.tenant.random_mutations(15)
        h.clock.advance(90)
        assert not await h.poll(COMPANIES, "incremental")
        assert "no answer" in h.failures[-1]
        assert "within 0.05s" in h.failures[-1]
        await h.settle()
        verdict = h.verdict()
        assert verdict.violations == [], verdict.violations
        assert verdict.changed_keys > 5


async def test_a_sink_down_for_hours_and_slack_429s_lose_no_delivery(tmp_path: Path) -> None:
    """The webhook receiver is down for six hours (FakeClock) while changes flow; Slack
    answers 429 whenever the sink sends faster than every 2 s, and a second Slack URL
    answers channel_not_found. Once the receiver is back: every event arrives, per
    key in order; Slack got every message at its pace; the broken URL is dead-lettered
    at once with Slack's reason."""
    webhook, slack = WebhookReceiver(), SlackReceiver(interval=2.0)
    async with webhook, slack:
        dead_url = slack.fail("T0/B0/gone", 404, "channel_not_found")
        sinks = {
            "crm": {"type": "webhook", "url": webhook.url, "secret_env": "WH_SECRET"},
            "ops": {"type": "slack", "url_env": "SLACK_URL"},
            "gone": {"type": "slack", "url_env": "SLACK_GONE"},
        }
        env = {"SLACK_URL": slack.url("T0/B0/ok"), "SLACK_GONE": dead_url}
        async with e2e(tmp_path, seed=7, sinks=sinks, environ=env) as h:
            slack.clock = webhook.clock = h.clock
            await h.baseline()
            await webhook.stop()
            assert h.dispatcher is not None
            async with httpx.AsyncClient() as other_app:
                for _ in range(3):
                    await h.rounds(1)
                    # another app posts to the same Slack URL just before us: Slack says 429
                    await other_app.post(env["SLACK_URL"], json={"text": "another app"})
                    await h.dispatcher.run_until_idle()
                    h.clock.advance(2 * 3600)
            await webhook.start()
            await h.dispatcher.run_until_idle(settle=True)
            await h.settle()
            await h.dispatcher.run_until_idle(settle=True)
            rows = h.store.conn.execute(
                "SELECT sink, status, attempts, last_error FROM deliveries"
            ).fetchall()
            crm = [
                (r.headers.get("webhook-id", ""), r.body, r.status)
                for r in webhook.received
                if r.status < 300
            ]
            verdict = h.verdict(received=None)
            assert verdict.violations == [], verdict.violations
            events = [e.cloudevent() for e in h.store.list_events()]
            crm_rows = h.store.conn.execute(
                "SELECT event_id, status FROM deliveries WHERE sink = 'crm'"
            ).fetchall()
            from tests.reliability.verify import Verdict, check_deliveries

            delivered = Verdict()
            check_deliveries(delivered, events, [(a, b) for a, b in crm_rows], crm)
            assert delivered.violations == [], delivered.violations
            assert delivered.unique_delivered == delivered.events > 10
    ops = [r for r in rows if r[0] == "ops"]
    assert ops
    assert {r[1] for r in ops} == {"delivered"}
    gone = [r for r in rows if r[0] == "gone"]
    assert gone
    assert {r[1] for r in gone} == {"dead"}
    assert all("channel_not_found" in (r[3] or "") for r in gone)
    assert all(r[2] == 1 for r in gone), "channel_not_found was retried"
    accepted = [r.at for r in slack.ok if r.path.endswith("/ok")]
    assert len(accepted) >= 6  # ours and the other app's
    assert all(b - a >= 2.0 - 1e-6 for a, b in itertools.pairwise(accepted))
    assert any(r.status == 429 for r in slack.received), "Slack never pushed back"


_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("CREATE TABLE IF NOT EXISTS held_by_other (x)")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


async def test_a_database_write_locked_by_another_process_fails_polls_clearly_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """Another process holds the write lock: polls fail with 'locked by another
    process', nothing is half-written; once it lets go, the next polls catch up."""
    async with e2e(tmp_path, seed=9) as h:
        await h.baseline()
        h.store.conn.execute("PRAGMA busy_timeout = 200")  # fail fast instead of after 10 s
        holder = await asyncio.create_subprocess_exec(  # a real second process, a real lock
            sys.executable,
            "-c",
            _HOLDER,
            str(h.path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert holder.stdout is not None
            assert (await holder.stdout.readline()).strip() == b"locked"
            h.sim.tenant.random_mutations(20)
            h.clock.advance(90)
            for source in SOURCES:
                assert not await h.poll(source)
            assert all("locked by another process" in f for f in h.failures)
        finally:
            await holder.communicate(b"")
        await h.settle()
        verdict = h.verdict()
        assert verdict.violations == [], verdict.violations
        assert verdict.changed_keys > 5


async def test_a_full_disk_fails_the_page_whole_and_the_next_poll_catches_up(
    tmp_path: Path,
) -> None:
    """SQLITE_FULL (the real DB file capped with PRAGMA max_page_count): the poll fails
    with 'the disk is full', the file stays intact, no partial page; with space again,
    every change made meanwhile is found."""
    async with e2e(tmp_path, seed=11) as h:
        await h.baseline()
        pages = h.store.conn.execute("PRAGMA page_count").fetchone()[0]
        h.store.conn.execute(f"PRAGMA max_page_count = {pages + 1}")
        for key in list(h.sim.tenant.keys("Company"))[:60]:
            h.sim.tenant.update("Company", key, {"Name": "x" * 400 + key})
        h.clock.advance(90)
        assert not await h.poll(COMPANIES)
        assert "the disk is full" in h.failures[-1]
        assert _integrity(h.path) == "ok"
        h.store.conn.execute("PRAGMA max_page_count = 1073741823")
        await h.settle()
        verdict = h.verdict()
        assert verdict.violations == [], verdict.violations
        assert verdict.changed_keys >= 60


async def test_a_database_corrupted_under_the_daemon_is_a_clear_error_not_silent_loss(
    tmp_path: Path,
) -> None:
    """Pages of the file are overwritten behind the store's back: a fresh connection (the
    next daemon start, another source's connection) gets a StoreError saying the file is
    damaged - never a traceback, never events built from garbage."""
    async with e2e(tmp_path, seed=13) as h:
        await h.baseline()
        h.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = h.path.stat().st_size
        with h.path.open("r+b") as f:
            f.seek(4096)
            f.write(os.urandom(size - 4096))
        assert _integrity(h.path) != "ok"
        h.sim.tenant.random_mutations(10)
        h.clock.advance(90)
        with pytest.raises(StoreError) as info:
            _read_and_write(h.path, h.clock)
        assert "malformed" in str(info.value) or "not a database" in str(info.value)


async def test_a_database_file_deleted_under_the_daemon_is_noticed(tmp_path: Path) -> None:
    """Deleting watcher.db while the store is open must fail the next commit clearly."""
    async with e2e(tmp_path, seed=15) as h:
        await h.baseline()
        os.unlink(h.path)
        h.sim.tenant.random_mutations(10)
        h.clock.advance(90)
        assert not await h.poll(CTAS)
        assert "deleted" in h.failures[-1]


def _read_and_write(path: Path, clock: Any) -> None:
    """What the next daemon start does first: read every source, commit a page."""
    fresh = Store.open(path, clock=clock)
    try:
        for source in SOURCES:
            dict(fresh.iter_snapshots(source.name))
            fresh.commit(source.name, PageCommit(writes=[("k", 1, {"Gsid": "k"})]))
    finally:
        fresh.close()


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()


def test_the_harness_secret_is_a_standard_webhooks_secret() -> None:
    assert SECRET.startswith("whsec_")
