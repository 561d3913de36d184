"""`watcher run` delivering to a real JetStream stream: killed with SIGKILL mid-delivery
and restarted, and with the NATS server stopped and started again while it runs. An
independent consumer then finds every committed event once, in order per record."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.delivery.nats_server import NatsServer, read_stream
from watcher.testing.sim import running_sim

pytestmark = pytest.mark.slow

KEY = "nats-daemon-test-key"

CONFIG = """
[gainsight]
base_url = "{base_url}"
access_key_env = "GAINSIGHT_ACCESS_KEY"

[store]
path = "watcher.db"

[rules]
paths = ["rules"]

[[sources]]
name = "companies"
kind = "company"
select = ["Gsid", "Name", "Arr", "Stage", "ModifiedDate"]
ignore_fields = ["ModifiedDate"]
full_sweep = "0 */6 * * *"
incremental = "* * * * *"
incremental_overlap = "1m"
baseline = "emit"

[sinks.js]
type = "nats"
url = "{nats_url}"
subject = "gs"
stream = "GS"
timeout_s = 2
retry_schedule = ["0s", {retries}]
"""

RULES = """
[[rules]]
name = "all"
sources = ["companies"]
on = ["created", "updated", "deleted"]
sinks = ["js"]
"""


def counts(db: Path) -> tuple[int, dict[str, int]]:
    """Events committed, and deliveries by status."""
    if not db.exists():
        return 0, {}
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "deliveries" not in tables:
            return 0, {}
        events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        rows = conn.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
        return int(events), {str(s): int(n) for s, n in rows}
    finally:
        conn.close()


def events_in_order(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [
            (str(i), str(s))
            for i, s in conn.execute("SELECT id, subject FROM events ORDER BY sequence")
        ]
    finally:
        conn.close()


def wait_for(cond: object, what: str, within: float = 90.0, extra: object = lambda: "") -> None:
    deadline = time.monotonic() + within
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {extra()}"  # type: ignore[operator]
        time.sleep(0.05)


def start_daemon(tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GAINSIGHT_ACCESS_KEY": KEY}
    return subprocess.Popen(
        [sys.executable, "-m", "watcher", "--config", "watcher.toml", "run", "--every", "0.3"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_and_a_nats_restart_lose_and_reorder_nothing(tmp_path: Path) -> None:
    db = tmp_path / "watcher.db"
    server = NatsServer(tmp_path / "js").start()
    with running_sim(companies=1500, ctas=0, goals=0, access_key=KEY, seed=3) as sim:
        (tmp_path / "rules").mkdir()
        (tmp_path / "rules" / "all.toml").write_text(RULES)
        retries = ", ".join(['"0.2s"'] * 200)
        (tmp_path / "watcher.toml").write_text(
            CONFIG.format(base_url=sim.base_url, nats_url=server.url, retries=retries)
        )
        daemon = start_daemon(tmp_path)
        try:
            # the baseline emits 1500 created events; kill while they are being delivered
            wait_for(lambda: counts(db)[1].get("delivered", 0) >= 100, "first deliveries")
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(10)
            killed_with = counts(db)[1]
            assert killed_with.get("pending", 0) > 0, killed_with  # the kill hit mid-delivery
            for _ in range(3):
                sim.tenant.random_mutations(40)
            daemon = start_daemon(tmp_path)
            wait_for(
                lambda: counts(db)[1].get("delivered", 0) > killed_with["delivered"],
                "deliveries after the restart",
            )
            server.stop()  # NATS goes away mid-run; publishes are retried
            for _ in range(3):
                sim.tenant.random_mutations(40)
            time.sleep(1.0)  # the daemon polls, commits and fails to publish meanwhile
            server.start()
            wait_for(
                lambda: counts(db)[1].get("pending", 0) == 0 and counts(db)[0] > 1500,
                "every delivery done",
                extra=lambda: counts(db),
            )
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
    try:
        got = asyncio.run(read_stream(server.url, "GS"))
    finally:
        server.stop()
    stored = events_in_order(db)
    _, status = counts(db)
    assert set(status) == {"delivered"}
    ids = [m.headers["Nats-Msg-Id"] for m in got]
    assert len(ids) == len(set(ids)), "an event id is in the stream twice"
    assert set(ids) == {i for i, _ in stored}
    position = {event_id: n for n, (event_id, _) in enumerate(stored)}
    per_record: dict[str, list[int]] = defaultdict(list)
    for m in got:
        event = json.loads(m.body)
        per_record[event["subject"]].append(position[event["id"]])
    assert any(len(v) > 1 for v in per_record.values())
    for key, order in per_record.items():
        assert order == sorted(order), f"record {key}: stream order differs from commit order"
