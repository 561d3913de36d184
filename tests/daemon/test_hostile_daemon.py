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


DEEP_RULES = "[[rules]]\nname = 'deep'\nsources = ['companies']\nsinks = []\nwhen = " + (
    "[" * 5000 + "]" * 5000
)


async def test_a_reload_of_a_rules_file_nested_5000_deep_is_rejected_and_the_daemon_runs_on(
    tmp_path: Path,
) -> None:
    """SIGHUP after the rules file became a 5000-deep nest: config.reload_rejected, the
    old rules stay, polls go on; so for any other error a build raises."""
    from datetime import timedelta

    from structlog.testing import capture_logs

    from tests.daemon.test_runner import START, FakePoller, write_config
    from watcher.clock import FakeClock
    from watcher.config import WatcherConfig, load_config
    from watcher.daemon.runner import Components, Daemon
    from watcher.delivery.sinks import load_checked_rules

    rules = tmp_path / "rules.toml"
    rules.write_text("")
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("paths = []", 'paths = ["rules.toml"]'))
    clock = FakeClock(START)
    poller = FakePoller(clock)
    builds = 0

    async def build(config: WatcherConfig) -> Components:
        nonlocal builds
        builds += 1
        load_checked_rules(config, base_dir=tmp_path)  # as the real builder calls it
        if builds == 3:
            raise ValueError("an unexpected failure in a builder")
        return Components(poller=poller)

    daemon = Daemon(load_config(path), build, clock=clock, config_path=path)

    def deep() -> None:
        rules.write_text(DEEP_RULES)
        daemon.request_reload()

    def other() -> None:
        rules.write_text("")
        daemon.request_reload()

    poller.at_poll[3] = deep
    poller.at_poll[5] = other
    with capture_logs() as logs:
        assert await daemon.run(until=START + timedelta(minutes=9)) == 0
    rejected = [e for e in logs if e["event"] == "config.reload_rejected"]
    assert len(rejected) == 2
    assert "nested too deeply" in rejected[0]["error"]
    assert "ValueError: an unexpected failure" in rejected[1]["error"]
    assert len([c for c in poller.calls if c[1] == "incremental"]) == 4  # 16:02 ... 16:08


def test_a_start_with_a_rules_file_nested_5000_deep_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not exit 1 (which systemd restarts in a loop): a configuration error."""
    from tests.daemon.test_runner import write_config
    from watcher.cli import main

    monkeypatch.setenv("WATCHER_TEST_KEY", "k" * 20)
    (tmp_path / "rules.toml").write_text(DEEP_RULES)
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("paths = []", 'paths = ["rules.toml"]'))
    assert main(["--config", str(path), "run"]) == 2
    assert "nested too deeply" in capsys.readouterr().err


def test_a_config_file_nested_5000_deep_is_a_config_error(tmp_path: Path) -> None:
    from watcher.config import load_config
    from watcher.errors import ConfigError

    path = tmp_path / "watcher.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(path)


async def test_sigterm_finishes_within_one_grace_period_whatever_hangs(tmp_path: Path) -> None:
    """A poll that never ends and a dispatcher that ignores its stop signal: the daemon
    still exits within one grace period in all (it took one per stage before)."""
    import asyncio

    from tests.daemon.test_runner import START, FakePoller, make_daemon, write_config
    from watcher.clock import FakeClock

    class DeafDispatcher:
        async def run(self, stop: asyncio.Event) -> None:
            await asyncio.Event().wait()

    write_config(tmp_path)
    clock = FakeClock(START)
    poller = FakePoller(clock, gate=asyncio.Event())  # every poll hangs
    daemon = make_daemon(tmp_path, clock, poller, DeafDispatcher(), grace_s=1.0)  # type: ignore[arg-type]
    run = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.started.wait(), 10)
    for _ in range(100):  # the first poll starts on the loop's first turns
        if poller.calls:
            break
        await asyncio.sleep(0)
    assert poller.calls
    started = asyncio.get_running_loop().time()
    daemon.request_stop()
    assert await asyncio.wait_for(run, 10) == 0
    assert asyncio.get_running_loop().time() - started < 1.7


def test_a_purge_told_to_stop_ends_between_batches(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from watcher.config import StoreConfig
    from watcher.store.retention import purge_file

    later = datetime(2030, 1, 1, tzinfo=UTC)
    result = purge_file(tmp_path / "watcher.db", StoreConfig(), later, stop=lambda: True)
    assert result.rows == 0
    assert result.freed_bytes == 0
