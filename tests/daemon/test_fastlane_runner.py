"""The fast lane in the daemon loop (FakeClock, fake poller, no sleeping): reads
every ``poll_every``, stretched while idle, snapped back on a change, and running
beside the source's full sweep."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from watcher.clock import FakeClock
from watcher.config import SourceConfig, WatcherConfig, load_config
from watcher.core.modes import Mode
from watcher.daemon.runner import Components, Daemon, PollReport

START = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)

CONFIG = """
[gainsight]
base_url = "https://acme.gainsightcloud.com"
access_key_env = "WATCHER_TEST_KEY"

[rules]
paths = []

[[sources]]
name = "companies"
kind = "company"
full_sweep = "0 */6 * * *"
poll_every = "10s"
"""


@dataclass
class LanePoller:
    clock: FakeClock
    calls: list[tuple[str, float]] = field(default_factory=list)
    changes_at: set[int] = field(default_factory=set)  # incremental read numbers that find one
    sweep_gate: asyncio.Event | None = None
    sweeping: bool = False
    during_sweep: list[str] = field(default_factory=list)

    async def poll(self, source: SourceConfig, mode: Mode) -> PollReport:
        offset = (self.clock.now() - START).total_seconds()
        self.calls.append((mode, offset))
        if mode == "full":
            self.sweeping = True
            try:
                if self.sweep_gate is not None and len(self.calls) > 1:
                    await self.sweep_gate.wait()
            finally:
                self.sweeping = False
            return PollReport(outcome="ok")
        if self.sweeping:
            self.during_sweep.append(mode)
        reads = sum(1 for m, _ in self.calls if m == "incremental")
        found = mode == "incremental" and reads in self.changes_at
        return PollReport(outcome="ok", calls=1, events=1 if found else 0)


def daemon_for(tmp_path: Path, clock: FakeClock, poller: LanePoller) -> Daemon:
    path = tmp_path / "watcher.toml"
    path.write_text(CONFIG)

    async def build(_config: WatcherConfig) -> Components:
        return Components(poller=poller, dispatcher=None, summary={})

    return Daemon(load_config(path), build, clock=clock, config_path=path, purge_after_s=None)


async def test_fast_lane_stretches_while_idle_and_snaps_back_on_a_change(tmp_path: Path) -> None:
    clock = FakeClock(START)
    poller = LanePoller(clock, changes_at={5})
    await daemon_for(tmp_path, clock, poller).run(until=START + timedelta(seconds=200))
    inc = [t for m, t in poller.calls if m == "incremental"]
    # 10 s, then x1.5 a round up to 40 s; the 5th read finds a change: 10 s again
    assert inc[:8] == [10.0, 25.0, 47.5, 81.25, 121.25, 131.25, 146.25, 168.75]
    deletes = [t for m, t in poller.calls if m == "delete_log"]
    assert deletes
    assert len(deletes) <= len(inc) // 2 + 1  # every second round
    assert [m for m, _ in poller.calls].count("full") == 1  # the baseline at start


async def test_fast_lane_keeps_reading_while_the_sweep_runs(tmp_path: Path) -> None:
    clock = FakeClock(START)
    poller = LanePoller(clock, changes_at=set(range(100)), sweep_gate=asyncio.Event())
    daemon = daemon_for(tmp_path, clock, poller)
    # the first sweep (the baseline) is held: the fast lane still reads every 10 s
    poller.calls.append(("warm-up", 0.0))  # makes the baseline sweep the gated one
    task = asyncio.create_task(daemon.run(until=START + timedelta(seconds=60)))
    await daemon.started.wait()
    for _ in range(2000):
        await asyncio.sleep(0)
        if clock.now() >= START + timedelta(seconds=60):
            break
    assert poller.sweeping
    assert poller.sweep_gate is not None
    poller.sweep_gate.set()
    assert await task == 0
    assert poller.during_sweep.count("incremental") >= 5, poller.calls
    assert "delete_log" in poller.during_sweep
