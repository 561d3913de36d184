"""The database file deleted or corrupted under a *running* daemon (real processes).

``watcher sim`` and the daemon (``watcher run --every 0.3``) run as subprocesses;
after the baseline, the test deletes or overwrites ``watcher.db`` and makes changes
in the tenant. The daemon must say so in a clear log line (never a traceback) and
must not pretend all is well: no event is reported as committed to a file that is
gone.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tests.reliability.soak import Soak, SoakOptions, write_config

pytestmark = pytest.mark.slow


async def _with_daemon(tmp_path: Path, damage: str) -> str:
    soak = Soak(SoakOptions(kills=0, companies=60, ctas=20, latency_s=0.0, every_s=0.3), tmp_path)
    async with soak.receiver:
        await soak.start_sim()
        try:
            write_config(tmp_path, soak.base_url, soak.receiver.url)
            await soak.start_daemon()
            await soak.wait_for("taking the baseline", soak._baselined, 30)
            if damage == "delete":
                os.unlink(soak.db)
            else:
                size = soak.db.stat().st_size
                with soak.db.open("r+b") as f:
                    f.write(os.urandom(size))
            await soak.admin("POST", "/__sim/mutate", {"random": 10})
            log = tmp_path / "daemon-01.log"
            deadline = time.monotonic() + 20
            text = ""
            while time.monotonic() < deadline:
                text = log.read_text(errors="replace")
                if '"outcome": "failed"' in text or '"outcome":"failed"' in text:
                    break
                await asyncio.sleep(0.1)
            assert soak.daemon is not None
            alive = soak.daemon.returncode is None
        finally:
            await soak.stop_daemon()
            if soak.sim is not None and soak.sim.returncode is None:
                soak.sim.terminate()
                await soak.sim.wait()
    assert "Traceback" not in text
    return text + f"\nalive={alive}"


async def test_a_database_deleted_under_the_running_daemon_fails_polls_with_a_clear_line(
    tmp_path: Path,
) -> None:
    text = await _with_daemon(tmp_path, "delete")
    assert "was deleted or replaced" in text, text[-2000:]


async def test_a_database_overwritten_under_the_running_daemon_fails_polls_clearly(
    tmp_path: Path,
) -> None:
    text = await _with_daemon(tmp_path, "corrupt")
    failed = [line for line in text.splitlines() if '"failed"' in line]
    assert failed, text[-2000:]
    assert any("not a database" in line or "malformed" in line for line in failed), failed[:3]
    assert "Task exception was never retrieved" not in text
