"""`watcher run` as a process against hostile handlers: Python handlers that hang
never starve the daemon's HTTP server or its shutdown (issue 12)."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon.test_run_cli import free_port, log_lines, wait_until
from watcher.testing.sim import RunningSim, running_sim

pytestmark = pytest.mark.slow

KEY = "sim-access-key-for-hostile"
TOKEN = "feed-token-for-hostile-tests"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSim]:
    with running_sim(companies=12, ctas=0, goals=0, access_key=KEY) as running:
        yield running


def hung_handler_config(sim: RunningSim, port: int) -> str:
    return f"""
[gainsight]
base_url = "{sim.base_url}"
access_key_env = "GAINSIGHT_ACCESS_KEY"

[store]
path = "watcher.db"

[http]
listen = "127.0.0.1:{port}"
feed_token_env = "WATCHER_FEED_TOKEN"

[rules]
paths = ["rules.toml"]

[[sources]]
name = "companies"
kind = "company"
select = ["Gsid", "Name", "ModifiedDate"]
full_sweep = "0 */6 * * *"
baseline = "emit"

[sinks.hang]
type = "python"
callable = "tests.delivery.handlers:block"
timeout_s = 0.2
concurrency = 3
retry_schedule = ["0s", "0s", "0s", "0s", "0s", "0s", "0s", "0s"]
"""


RULES = """
[[rules]]
name = "everything"
sources = ["companies"]
on = ["created", "updated", "deleted"]
sinks = ["hang"]
"""


def test_hung_python_handlers_leave_probes_answering_and_sigterm_within_grace(
    sim: RunningSim, tmp_path: Path
) -> None:
    """Twelve events to a handler that never returns: the sink is degraded in /readyz
    and /metrics, 40 concurrent probes all answer, and SIGTERM exits 0 within the grace
    period (the stuck handler threads never hold the process)."""
    port = free_port()
    (tmp_path / "watcher.toml").write_text(hung_handler_config(sim, port))
    (tmp_path / "rules.toml").write_text(RULES)
    env = {
        **os.environ,
        "GAINSIGHT_ACCESS_KEY": KEY,
        "WATCHER_FEED_TOKEN": TOKEN,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("NOTIFY_SOCKET", None)
    with (tmp_path / "out.log").open("ab") as out, (tmp_path / "err.log").open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "--config", str(tmp_path / "watcher.toml"),
             "run", "--grace", "2"],
            cwd=tmp_path, env=env, stdout=out, stderr=err,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"

        def failed_attempts() -> int:
            return sum(1 for e in log_lines(tmp_path) if e["event"] == "delivery.failed")

        wait_until("many failed attempts", lambda: failed_attempts() >= 20, within=30)
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 503
        assert "degraded" in ready.json()["checks"]["sink:hang"]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            paths = ["/metrics", "/readyz", "/healthz", "/v1/events"] * 10
            headers = {"Authorization": f"Bearer {TOKEN}"}
            answers = list(
                pool.map(lambda p: httpx.get(base + p, headers=headers, timeout=5), paths)
            )
        assert all(a.status_code in (200, 503) for a in answers)
        assert 'watcher_sink_degraded{sink="hang"} 1.0' in httpx.get(f"{base}/metrics").text
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 8
        assert log_lines(tmp_path)[-1]["event"] == "daemon.stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
