"""`watcher run` as a process, the way systemd runs it: against the simulated tenant,
with a real NOTIFY_SOCKET, HTTP probes, SIGHUP reloads, SIGTERM, and the lock."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from watcher.testing.sim import RunningSim, running_sim

pytestmark = pytest.mark.slow

KEY = "sim-access-key-for-run-cli"
TOKEN = "feed-token-for-run-cli"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def config_text(sim: RunningSim, port: int, incremental: str = "* * * * *") -> str:
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
paths = []

[[sources]]
name = "companies"
kind = "company"
select = ["Gsid", "Name", "Arr", "ModifiedDate"]
full_sweep = "0 */6 * * *"
incremental = "{incremental}"
"""


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSim]:
    with running_sim(companies=30, ctas=0, goals=0, access_key=KEY) as running:
        yield running


@pytest.fixture
def notify() -> Iterator[tuple[socket.socket, str]]:
    folder = tempfile.mkdtemp(prefix="wr", dir="/tmp")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    yield sock, path
    sock.close()
    os.unlink(path)
    os.rmdir(folder)


def start(tmp_path: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GAINSIGHT_ACCESS_KEY": KEY,
        "WATCHER_FEED_TOKEN": TOKEN,
        **(extra_env or {}),
    }
    if "NOTIFY_SOCKET" not in (extra_env or {}):
        env.pop("NOTIFY_SOCKET", None)
    with (tmp_path / "out.log").open("ab") as out, (tmp_path / "err.log").open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "watcher", "--config", str(tmp_path / "watcher.toml"),
             "run", "--grace", "5"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=err,
        )  # fmt: skip


def log_lines(tmp_path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in (tmp_path / "out.log").read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


def wait_until(what: str, check: Callable[[], Any], within: float = 15.0) -> Any:
    """Poll an external process's observable state (no fixed sleeps)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def messages(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            return out


def test_run_reports_ready_serves_probes_reloads_and_stops_on_sigterm(
    sim: RunningSim, tmp_path: Path, notify: tuple[socket.socket, str]
) -> None:
    """The systemd life cycle: READY, WATCHDOG, STATUS, probes, SIGHUP (bad then good),
    SIGTERM -> STOPPING and exit 0."""
    sock, path = notify
    port = free_port()
    # secrets the systemd way: *_file names resolved under $CREDENTIALS_DIRECTORY
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "gainsight-access-key").write_text(KEY)
    (creds / "feed-token").write_text(TOKEN)

    def systemd_config(text: str) -> str:
        return text.replace(
            'access_key_env = "GAINSIGHT_ACCESS_KEY"', 'access_key_file = "gainsight-access-key"'
        ).replace('feed_token_env = "WATCHER_FEED_TOKEN"', 'feed_token_file = "feed-token"')

    (tmp_path / "watcher.toml").write_text(systemd_config(config_text(sim, port)))
    proc = start(
        tmp_path,
        {
            "NOTIFY_SOCKET": path,
            "WATCHDOG_USEC": "400000",
            "CREDENTIALS_DIRECTORY": str(creds),
            "GAINSIGHT_ACCESS_KEY": "",
            "WATCHER_FEED_TOKEN": "",
        },
    )
    try:
        seen: list[str] = []

        def received(text: str) -> bool:
            seen.extend(messages(sock))
            return any(text in m for m in seen)

        wait_until("READY=1", lambda: received("READY=1"))
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        ready = wait_until("ready", lambda: httpx.get(f"{base}/readyz").status_code == 200)
        assert ready
        metrics = httpx.get(f"{base}/metrics").text
        assert 'watcher_polls_total{mode="full",outcome="ok",source="companies"} 1.0' in metrics
        assert 'watcher_api_calls_total{status_class="2xx"}' in metrics
        feed = httpx.get(f"{base}/v1/events", headers={"Authorization": f"Bearer {TOKEN}"})
        assert feed.status_code == 200
        assert httpx.get(f"{base}/v1/events").status_code == 401
        wait_until("a watchdog ping", lambda: received("WATCHDOG=1"))
        wait_until("a status line", lambda: received("STATUS=last poll companies/full ok"))

        bad = config_text(sim, port, incremental="*/61 * * * *")
        (tmp_path / "watcher.toml").write_text(systemd_config(bad))
        proc.send_signal(signal.SIGHUP)
        rejected = wait_until(
            "reload rejected",
            lambda: [e for e in log_lines(tmp_path) if e["event"] == "config.reload_rejected"],
        )
        assert "sources['companies'].incremental" in rejected[0]["error"]
        assert httpx.get(f"{base}/healthz").status_code == 200  # still running the old one

        good = config_text(sim, port, incremental="*/5 * * * *")
        (tmp_path / "watcher.toml").write_text(systemd_config(good))
        proc.send_signal(signal.SIGHUP)
        wait_until(
            "reloaded", lambda: any(e["event"] == "config.reloaded" for e in log_lines(tmp_path))
        )

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert received("STOPPING=1")
        events = [e["event"] for e in log_lines(tmp_path)]
        assert events[-1] == "daemon.stopped"
        assert (tmp_path / "err.log").read_text() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_second_daemon_on_the_same_database_exits_1_with_a_clear_error(
    sim: RunningSim, tmp_path: Path
) -> None:
    """One daemon per database: the second says who holds it and what to do."""
    port = free_port()
    (tmp_path / "watcher.toml").write_text(config_text(sim, port))
    first = start(tmp_path)
    try:
        wait_until(
            "first daemon up",
            lambda: any(e["event"] == "daemon.started" for e in log_lines(tmp_path)),
        )
        second = subprocess.run(
            [sys.executable, "-m", "watcher", "--config", str(tmp_path / "watcher.toml"), "run"],
            cwd=tmp_path,
            env={**os.environ, "GAINSIGHT_ACCESS_KEY": KEY, "WATCHER_FEED_TOKEN": TOKEN},
            capture_output=True,
            check=False,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert f"another watcher daemon (pid {first.pid}) is already running" in second.stderr
        assert "different [store] path" in second.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_run_exits_2_when_a_secret_is_missing(sim: RunningSim, tmp_path: Path) -> None:
    """A missing secret is a configuration error named by setting, before anything starts."""
    (tmp_path / "watcher.toml").write_text(config_text(sim, free_port()))
    env = {k: v for k, v in os.environ.items() if k != "WATCHER_FEED_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "--config", str(tmp_path / "watcher.toml"), "run"],
        cwd=tmp_path,
        env={**env, "GAINSIGHT_ACCESS_KEY": KEY},
        capture_output=True,
        check=False,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "http.feed_token: environment variable WATCHER_FEED_TOKEN is not set" in result.stderr
    assert not (tmp_path / "watcher.db").exists()


def test_run_in_process_with_max_polls_exits_0(
    sim: RunningSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`watcher run --max-polls N` (smoke mode) polls, then stops cleanly with exit 0."""
    from watcher.cli import main

    (tmp_path / "watcher.toml").write_text(config_text(sim, free_port()))
    monkeypatch.setenv("GAINSIGHT_ACCESS_KEY", KEY)
    monkeypatch.setenv("WATCHER_FEED_TOKEN", TOKEN)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    try:
        code = main(["--config", str(tmp_path / "watcher.toml"), "run", "--max-polls", "1"])
    finally:
        structlog.reset_defaults()
    assert code == 0
    assert (tmp_path / "watcher.db").exists()
