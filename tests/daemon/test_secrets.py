"""No secret ever appears in a log line, an event, the database file or an error message.

The daemon runs for real - simulated tenant over loopback, real webhook and Slack
receivers, the feed server - with distinctive secret values, through polls,
deliveries and failures (a failed poll, a failed delivery and its retry, a rejected
feed request, a rejected reload). Then every byte it produced is searched.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import structlog

from watcher.clock import SystemClock
from watcher.config import load_config
from watcher.daemon.metrics import Metrics
from watcher.daemon.runner import Daemon
from watcher.daemon.wiring import real_builder
from watcher.logging import configure_logging
from watcher.store.view import StoreView
from watcher.testing.receivers import Reply, SlackReceiver, WebhookReceiver
from watcher.testing.sim import RunningSim, running_sim

pytestmark = pytest.mark.slow

ACCESS_KEY = "AK-9f3e1d7c-access-key-SECRET-4b2a"
WEBHOOK_SECRET_B64 = "c2VjcmV0LXdlYmhvb2sta2V5LWRpc3RpbmN0aXZlIQ=="  # base64 of a 32-byte key
WEBHOOK_SECRET = "whsec_" + WEBHOOK_SECRET_B64
SLACK_TOKEN = "T0SECRET9/B0SECRET9/slackTokenZq8Xw3Vb"
FEED_TOKEN = "feed-token-7d1c9e3a-SECRET-55f0"

RULES = """
[[rules]]
name = "every-company-change"
sources = ["companies"]
sinks = ["crm", "ops-slack"]
"""


def config_text(base_url: str, port: int) -> str:
    return f"""
[gainsight]
base_url = "{base_url}"
access_key_env = "WATCHER_TEST_ACCESS_KEY"
max_retries = 0

[store]
path = "watcher.db"

[http]
listen = "127.0.0.1:{port}"
feed_token_file = "feed-token"

[rules]
paths = ["rules"]

[[sources]]
name = "companies"
kind = "company"
select = ["Gsid", "Name", "Arr", "Csm", "ModifiedDate"]
ignore_fields = ["ModifiedDate"]
full_sweep = "0 */6 * * *"
incremental = "* * * * *"
delete_log = "* * * * *"

[sinks.crm]
type = "webhook"
url_env = "WATCHER_TEST_CRM_URL"
secret_env = "WATCHER_TEST_CRM_SECRET"
retry_schedule = ["0s", "50ms", "50ms"]

[sinks.ops-slack]
type = "slack"
url_file = "slack-url"
retry_schedule = ["0s", "1s", "1s"]
"""


async def test_no_secret_in_logs_events_database_or_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Search every output of a busy run for each distinctive secret value."""
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    configure_logging(level="debug", stream=stream, json=True)
    crm, slack = WebhookReceiver(), SlackReceiver()
    responses: list[str] = []
    try:
        async with crm, slack:
            with running_sim(companies=20, ctas=0, goals=0, access_key=ACCESS_KEY) as sim:
                (tmp_path / "rules").mkdir()
                (tmp_path / "rules" / "all.toml").write_text(RULES)
                (tmp_path / "feed-token").write_text(FEED_TOKEN)
                (tmp_path / "slack-url").write_text(slack.url(SLACK_TOKEN))
                monkeypatch.setenv("WATCHER_TEST_ACCESS_KEY", ACCESS_KEY)
                monkeypatch.setenv("WATCHER_TEST_CRM_URL", crm.url)
                monkeypatch.setenv("WATCHER_TEST_CRM_SECRET", WEBHOOK_SECRET)
                port = free_port()
                path = tmp_path / "watcher.toml"
                path.write_text(config_text(sim.base_url, port))
                responses = await exercise(sim, crm, path, port)
    finally:
        structlog.reset_defaults()

    secrets = [ACCESS_KEY, WEBHOOK_SECRET, WEBHOOK_SECRET_B64, SLACK_TOKEN, FEED_TOKEN]
    assert len(crm.received) >= 2, "the run made deliveries"
    logs = stream.getvalue()
    assert '"event": "poll.finished"' in logs
    assert '"event": "delivery.failed"' in logs
    assert '"event": "delivery.succeeded"' in logs
    assert '"event": "config.reload_rejected"' in logs
    assert '"outcome": "failed"' in logs  # the failed poll
    stdlib = "\n".join(r.getMessage() for r in caplog.records)
    events = [r.body.decode() for r in crm.received]
    database = database_bytes(tmp_path)
    for secret in secrets:
        assert secret not in logs, "a log line carries a secret"
        assert secret not in stdlib, "a stdlib log record carries a secret"
        assert all(secret not in e for e in events), "an event carries a secret"
        assert secret.encode() not in database, "the database holds a secret"
        assert all(secret not in r for r in responses), "an HTTP answer carries a secret"


def database_bytes(folder: Path) -> bytes:
    """The database file and its WAL/SHM companions, as bytes."""
    return b"".join(p.read_bytes() for p in sorted(folder.glob("watcher.db*")))


def rewrite(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def exercise(sim: RunningSim, crm: WebhookReceiver, path: Path, port: int) -> list[str]:
    """Polls, deliveries, a failed delivery, a failed poll, feed calls, a bad reload."""
    clock = SystemClock()
    config = load_config(path)
    view = StoreView(path.parent / "watcher.db")
    metrics = Metrics(lambda: view.stats(clock.now()))
    daemon = Daemon(
        config,
        real_builder(clock=clock, base_dir=path.parent, metrics=metrics),
        clock=clock,
        config_path=path,
        metrics=metrics,
        every_s=0.2,
        grace_s=5,
    )
    run = asyncio.create_task(daemon.run())
    responses: list[str] = []
    try:
        await asyncio.wait_for(daemon.started.wait(), 10)
        await until(lambda: daemon.polls_finished >= 1)
        crm.then(Reply(500, {}, b"upstream exploded"))  # the first delivery fails once
        keys = sim.tenant.keys("Company")
        sim.tenant.update("Company", keys[0], {"Arr": 1.0})
        sim.tenant.update("Company", keys[1], {"Name": "Renamed Inc"})
        sim.tenant.delete("Company", keys[2])
        await until(lambda: len(crm.ok) >= 3)
        sim.tenant.faults.script = ["error", "error"]  # the next polls fail (HTTP 500)
        failed = daemon.polls_finished
        await until(lambda: daemon.polls_finished >= failed + 2)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as client:
            for headers in ({"Authorization": f"Bearer {FEED_TOKEN}"}, {"Authorization": "x"}):
                responses.append((await client.get("/v1/events", headers=headers)).text)
            for probe in ("/metrics", "/readyz", "/healthz"):
                responses.append((await client.get(probe)).text)
        rewrite(path, "max_retries = 0", "max_retries = -1")
        daemon.request_reload()
        await asyncio.wait_for(daemon.reload_finished.wait(), 10)
    finally:
        daemon.request_stop()
        assert await run == 0
    return responses


async def until(check: Callable[[], bool], within: float = 15.0) -> None:
    """Wait for the daemon's real I/O to reach a state (bounded; no fixed sleeps)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)
