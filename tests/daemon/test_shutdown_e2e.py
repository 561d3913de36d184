"""SIGTERM with a real poll in flight (the simulated tenant answers slowly): within the
grace period the poll commits; past it, it is cancelled and rolls back, recorded as
interrupted - and the daemon exits 0 either way."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from watcher.clock import SystemClock
from watcher.config import load_config
from watcher.daemon.metrics import Metrics
from watcher.daemon.runner import Daemon
from watcher.daemon.wiring import real_builder
from watcher.store import Store
from watcher.testing.sim import running_sim

pytestmark = pytest.mark.slow

KEY = "shutdown-test-key"

CONFIG = """
[gainsight]
base_url = "{base_url}"
access_key_env = "SHUTDOWN_TEST_KEY"

[store]
path = "watcher.db"

[rules]
paths = []

[[sources]]
name = "companies"
kind = "company"
select = ["Gsid", "Name", "ModifiedDate"]
full_sweep = "0 */6 * * *"
"""


def polls(path: Path) -> list[dict[str, object]]:
    store = Store.open(path)
    try:
        return store.polls()
    finally:
        store.close()


def snapshots(path: Path) -> int:
    store = Store.open(path)
    try:
        return store.count_snapshots("companies")
    finally:
        store.close()


@pytest.mark.parametrize(
    ("grace_s", "outcome", "stored"), [(5.0, "ok", 40), (0.05, "interrupted", 0)]
)
async def test_sigterm_lets_the_in_flight_poll_commit_or_roll_back(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    grace_s: float,
    outcome: str,
    stored: int,
) -> None:
    """Grace long enough: the sweep commits; too short: cancelled, nothing half-written."""
    monkeypatch.setenv("SHUTDOWN_TEST_KEY", KEY)
    with running_sim(companies=40, ctas=0, goals=0, access_key=KEY, latency=0.4) as sim:
        path = tmp_path / "watcher.toml"
        path.write_text(CONFIG.format(base_url=sim.base_url))
        clock = SystemClock()
        daemon = Daemon(
            load_config(path),
            real_builder(clock=clock, base_dir=tmp_path, metrics=Metrics()),
            clock=clock,
            config_path=path,
            grace_s=grace_s,
        )
        run = asyncio.create_task(daemon.run())
        await asyncio.wait_for(daemon.started.wait(), 10)
        # wait until the baseline's first (slow) page request has reached the tenant
        deadline = asyncio.get_running_loop().time() + 10
        while sim.tenant.requests_served == 0:
            assert asyncio.get_running_loop().time() < deadline, "no request reached the tenant"
            await asyncio.sleep(0.01)
        assert daemon.polls_finished == 0
        daemon.request_stop()
        assert await asyncio.wait_for(run, 10) == 0
    rows = polls(tmp_path / "watcher.db")
    assert [r["outcome"] for r in rows] == [outcome]
    assert snapshots(tmp_path / "watcher.db") == stored
