"""`watcher status` and the status page on a running demo (`make run`): the live state,
read by another process from the store while the daemon holds its lock."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def test_status_reads_a_running_demo(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    out_path = tmp_path / "out.txt"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "demo", "--http-port", "0", "--interval", "2",
             "--dir", str(folder)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 40
        text = ""
        while time.monotonic() < deadline and "\nwebhook <- gainsight." not in text:
            text = out_path.read_text()
            time.sleep(0.1)
        match = re.search(r"status page\s+(http://127\.0\.0\.1:\d+/)", text)
        assert match, text
        config = str(folder / "watcher.toml")
        done = subprocess.run(
            [sys.executable, "-m", "watcher", "status", "--json", "--config", config],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        status = json.loads(done.stdout)
        assert status["daemon"]["running"] is True
        assert status["daemon"]["pid"] == proc.pid
        by_name = {s["name"]: s for s in status["sources"]}
        assert by_name["companies"]["records"] == 200
        assert by_name["companies"]["last_poll"]["outcome"] in ("ok", "running")  # every 2 s
        assert by_name["companies"]["last_error"] is None
        assert status["api"]["calls_today"] > 0
        assert any(s["delivered_last_day"] > 0 for s in status["sinks"])
        page = httpx.get(match.group(1), timeout=10)
        assert page.status_code == 200
        assert 'data-source="companies"' in page.text
        assert "daemon running" in page.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        after = subprocess.run(
            [sys.executable, "-m", "watcher", "status", "--config", config],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert after.returncode == 0, after.stderr
        assert "daemon not running" in after.stdout
        assert "companies (company): 200 records" in after.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
