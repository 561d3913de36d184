"""A real crash: the poll process is SIGKILLed mid-sweep, then the poll runs again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.poll.helpers import Harness, source_config, tenant

CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    sys.path.insert(0, {root!r})
    from tests.poll.helpers import Harness, source_config, tenant
    from tests.poll.test_sigkill import mutate

    feed = tenant(200, page_size=10)
    mutate(feed)
    h = Harness(__import__("pathlib").Path({db!r}), feed)

    def hook(point):
        if point == "page_committed":
            print("committed", flush=True)
            time.sleep(0.05)  # give the parent a window to kill between or inside pages

    h.poller.hook = hook
    asyncio.run(h.poller.poll(source_config()))
    print("finished", flush=True)
    """
)


def mutate(feed: object) -> None:
    records = feed.records  # type: ignore[attr-defined]
    for i in range(0, 200, 9):
        records[f"1P02{i:06d}"]["Stage"] = "Will Churn"
    for i in range(5, 200, 31):
        records.pop(f"1P02{i:06d}")


def test_sigkill_mid_sweep_then_rerun_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """Killed with SIGKILL after some pages committed; the next run completes exactly."""
    db = tmp_path / "w.db"
    base = Harness(db, tenant(200, page_size=10))
    asyncio.run(base.poller.poll(source_config()))
    base.store.close()
    root = str(Path(__file__).resolve().parents[2])
    script = CHILD.format(root=root, db=str(db))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=root
    )
    assert proc.stdout is not None
    committed = 0
    for line in proc.stdout:
        if line.startswith("committed"):
            committed += 1
            if committed == 5:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    feed = tenant(200, page_size=10)
    mutate(feed)
    h = Harness(db, feed)
    partial = len(h.events())
    assert partial > 0
    asyncio.run(h.poller.poll(source_config()))
    expected = sorted(
        [("updated", f"1P02{i:06d}") for i in range(0, 200, 9) if i % 31 != 5]
        + [("deleted", f"1P02{i:06d}") for i in range(5, 200, 31)]
    )
    assert sorted(h.changes()) == expected
    (killed,) = [p for p in h.store.polls("companies") if p["outcome"] == "running"]
    assert killed["pages"] >= 5
