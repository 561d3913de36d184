"""The daemon loop driven by a FakeClock and fake parts: schedules, restarts, overlap,
failures, graceful stop and reload - no sleeping."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from watcher.clock import FakeClock
from watcher.config import SourceConfig, WatcherConfig, load_config
from watcher.core.modes import Mode
from watcher.daemon.runner import Components, Daemon, PollReport
from watcher.errors import ConfigError, TransientError

START = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)

CONFIG = """
[gainsight]
base_url = "https://acme.gainsightcloud.com"
access_key_env = "WATCHER_TEST_KEY"

[store]
path = "watcher.db"

[rules]
paths = []

[[sources]]
name = "companies"
kind = "company"
full_sweep = "0 */6 * * *"
incremental = "*/2 * * * *"
timezone = "UTC"

[[sources]]
name = "ctas"
kind = "cta"
full_sweep = "*/30 * * * *"
"""


@dataclass
class FakePoller:
    """Records every poll; ``gate`` (when set) holds polls until released."""

    clock: FakeClock
    calls: list[tuple[str, str, datetime]] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)
    gate: asyncio.Event | None = None
    active: Counter[str] = field(default_factory=Counter)
    max_active: Counter[str] = field(default_factory=Counter)
    #: Called at the start of the Nth poll (``at_poll``), e.g. to send SIGHUP mid-run.
    at_poll: dict[int, Callable[[], None]] = field(default_factory=dict)
    #: Seconds of the fake clock a poll of (source, mode) takes.
    takes: dict[tuple[str, str], float] = field(default_factory=dict)

    async def poll(self, source: SourceConfig, mode: Mode) -> PollReport:
        self.calls.append((source.name, mode, self.clock.now()))
        if len(self.calls) in self.at_poll:
            self.at_poll[len(self.calls)]()
        self.active[source.name] += 1
        self.max_active[source.name] = max(self.max_active[source.name], self.active[source.name])
        try:
            if self.gate is not None:
                await self.gate.wait()
            if (source.name, mode) in self.takes:  # the clock moves while it runs
                self.clock.advance(self.takes[source.name, mode])
                await asyncio.sleep(0)
            if source.name in self.fail:
                raise TransientError("gainsight answered 503 three times")
            return PollReport(outcome="ok", pages=1, records=3, calls=1)
        finally:
            self.active[source.name] -= 1


@dataclass
class FakeDispatcher:
    log: list[str] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        self.log.append("started")
        await stop.wait()
        self.log.append("finishing in-flight attempt")
        await asyncio.sleep(0)
        self.log.append("stopped")


def write_config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "watcher.toml"
    path.write_text(text)
    return path


def make_daemon(
    tmp_path: Path,
    clock: FakeClock,
    poller: FakePoller,
    dispatcher: FakeDispatcher | None = None,
    **kwargs: object,
) -> Daemon:
    path = write_config(tmp_path) if not (tmp_path / "watcher.toml").exists() else None
    path = tmp_path / "watcher.toml"
    config = load_config(path)

    async def build(_config: WatcherConfig) -> Components:
        return Components(poller=poller, dispatcher=dispatcher, summary={"rules": 0})

    return Daemon(config, build, clock=clock, config_path=path, **kwargs)  # type: ignore[arg-type]


async def test_an_hour_of_schedule_runs_each_cron_slot_once(tmp_path: Path) -> None:
    """Full sweeps run at start (baseline), then incrementals every 2 minutes."""
    clock = FakeClock(START)
    poller = FakePoller(clock)
    daemon = make_daemon(tmp_path, clock, poller)
    assert await daemon.run(until=START + timedelta(hours=1)) == 0
    inc = [t for s, m, t in poller.calls if (s, m) == ("companies", "incremental")]
    assert inc == [START + timedelta(minutes=m) for m in range(2, 60, 2)]
    full = [t for s, m, t in poller.calls if (s, m) == ("companies", "full")]
    assert full == [START]
    ctas = [t for s, m, t in poller.calls if s == "ctas"]
    assert ctas == [START, START + timedelta(minutes=30)]


async def test_a_restart_after_downtime_runs_missed_slots_once(tmp_path: Path) -> None:
    """Down for two days: each job runs once at start, then back on its cron."""
    clock = FakeClock(START)
    await make_daemon(tmp_path, clock, FakePoller(clock)).run(until=START + timedelta(minutes=5))
    clock.advance(2 * 86400)
    restart = clock.now()
    poller = FakePoller(clock)
    await make_daemon(tmp_path, clock, poller).run(until=restart + timedelta(minutes=3))
    # every job missed slots (36 incrementals, 8 sweeps...): each runs exactly once now,
    # incremental before full for companies (one poll per source at a time)
    at_restart = [(s, m) for s, m, t in poller.calls if t == restart]
    assert at_restart == [("companies", "incremental"), ("ctas", "full"), ("companies", "full")]
    # then back on the cron: the next incremental slot after 16:05 is 16:06
    later = [(s, m, t) for s, m, t in poller.calls if t > restart]
    assert later == [("companies", "incremental", restart + timedelta(minutes=1))]


async def test_an_incremental_longer_than_its_interval_does_not_starve_the_sweep(
    tmp_path: Path,
) -> None:
    """Each incremental of companies takes 3 minutes against its 2-minute cron, so it is
    due again the moment it ends; the hourly full sweep due at 17:00 still runs, after the
    first incremental that started once it was due, and the incrementals go on after it."""
    # One source, one lane: the poll moves the clock, and nothing else does meanwhile.
    one_source = CONFIG.split('[[sources]]\nname = "ctas"', maxsplit=1)[0]
    write_config(tmp_path, one_source.replace('"0 */6 * * *"', '"0 * * * *"'))
    clock = FakeClock(START)
    poller = FakePoller(clock, takes={("companies", "incremental"): 180.0})
    daemon = make_daemon(tmp_path, clock, poller, purge_after_s=None)  # no purge timer
    assert await daemon.run(max_polls=30) == 0  # (``until`` would sleep the clock to it)
    companies = [(m, t) for s, m, t in poller.calls if s == "companies"]
    sweeps = [t for m, t in companies if m == "full"]
    assert sweeps[0] == START
    assert len(sweeps) == 2
    # 16:59-17:02 runs as 17:00 falls due, 17:02-17:05 waits for no one, then the sweep
    assert sweeps[1] == START + timedelta(hours=1, minutes=5)
    after = [m for m, t in companies if t > sweeps[1]]
    assert after
    assert set(after) == {"incremental"}


async def test_no_two_polls_of_one_source_at_once(tmp_path: Path) -> None:
    """While a poll of a source runs, its due jobs wait; other sources go on."""
    clock = FakeClock(START)
    poller = FakePoller(clock, gate=asyncio.Event())
    # no retention purge: its thread would add loop turns this test counts in
    daemon = make_daemon(tmp_path, clock, poller, purge_after_s=None)
    task = asyncio.create_task(daemon.run())
    await settle(daemon)
    clock.advance(600)  # 5 incremental slots pass while the full sweep is stuck
    await reload(daemon)  # any wake-up makes the loop re-plan
    await settle(daemon)
    assert poller.max_active["companies"] == 1
    assert [(s, m) for s, m, _ in poller.calls] == [("companies", "full"), ("ctas", "full")]
    assert poller.gate is not None
    poller.gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    # the missed incrementals ran once, not five times
    assert [(s, m) for s, m, _ in poller.calls].count(("companies", "incremental")) == 1
    daemon.request_stop()
    assert await task == 0
    assert poller.max_active["companies"] == 1


async def settle(daemon: Daemon) -> None:
    """Wait until the daemon is up, then let the tasks it started take their turn."""
    await daemon.started.wait()
    for _ in range(20):
        await asyncio.sleep(0)


async def reload(daemon: Daemon) -> None:
    daemon.request_reload()
    await daemon.reload_finished.wait()
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_failed_poll_is_logged_counted_and_fails_readiness(tmp_path: Path) -> None:
    """A SourceError ends that poll only; it shows in logs, metrics and /readyz."""
    clock = FakeClock(START)
    poller = FakePoller(clock, fail={"ctas"})
    daemon = make_daemon(tmp_path, clock, poller)
    with capture_logs() as logs:
        await daemon.run(until=START + timedelta(minutes=3))
    finished = [e for e in logs if e["event"] == "poll.finished"]
    failed = [e for e in finished if e["outcome"] == "failed"]
    assert failed[0]["source"] == "ctas"
    assert "503" in failed[0]["error"]
    ok = [e for e in finished if e["outcome"] == "ok"]
    assert set(ok[0]) >= {"source", "mode", "pages", "records", "calls", "events", "duration"}
    metrics = daemon.metrics.render().decode()
    assert 'watcher_polls_total{mode="full",outcome="failed",source="ctas"} 1.0' in metrics
    assert 'watcher_polls_total{mode="full",outcome="ok",source="companies"} 1.0' in metrics
    assert 'watcher_last_successful_poll_timestamp_seconds{source="companies"}' in metrics
    ready = daemon.readiness()
    assert not ready.ready
    assert ready.checks["ctas"] == "last poll failed"
    assert ready.checks["companies"] == "ok"


async def test_readiness_turns_false_when_the_last_success_is_stale(tmp_path: Path) -> None:
    """Ready after successful polls; not ready once they are older than two periods."""
    clock = FakeClock(START)
    daemon = make_daemon(tmp_path, clock, FakePoller(clock))
    assert not daemon.readiness().ready  # no poll yet
    await daemon.run(until=START + timedelta(minutes=3))
    assert daemon.readiness().ready, daemon.readiness().checks
    clock.advance(3600)
    state = daemon.readiness()
    assert not state.ready
    assert state.checks["companies"].startswith("last successful poll older than")


async def test_stop_lets_the_in_flight_poll_finish_then_stops_the_dispatcher(
    tmp_path: Path,
) -> None:
    """SIGTERM: no new polls, in-flight ones commit, then the dispatcher drains; exit 0."""
    clock = FakeClock(START)
    poller = FakePoller(clock, gate=asyncio.Event())
    dispatcher = FakeDispatcher()
    daemon = make_daemon(tmp_path, clock, poller, dispatcher, grace_s=5.0)
    task = asyncio.create_task(daemon.run())
    await settle(daemon)
    daemon.request_stop()
    for _ in range(10):
        await asyncio.sleep(0)
    assert not task.done()  # waiting for the in-flight polls
    assert dispatcher.log == ["started"]
    assert poller.gate is not None
    poller.gate.set()
    assert await task == 0
    assert dispatcher.log == ["started", "finishing in-flight attempt", "stopped"]
    assert daemon.polls_finished == 2
    assert len(poller.calls) == 2  # nothing new started after the stop


async def test_stop_cancels_a_poll_that_outlives_the_grace_period(tmp_path: Path) -> None:
    """A stuck poll is cancelled after the grace period (its transaction rolls back)."""
    clock = FakeClock(START)
    poller = FakePoller(clock, gate=asyncio.Event())
    daemon = make_daemon(tmp_path, clock, poller, grace_s=0.01)
    task = asyncio.create_task(daemon.run())
    await settle(daemon)
    with capture_logs() as logs:
        daemon.request_stop()
        assert await task == 0
    assert {e["source"] for e in logs if e["event"] == "poll.cancelled"} == {"companies", "ctas"}
    # a cancelled poll does not count as a run: it runs again at the next start
    assert daemon.state.load() == {}


def sighup_at(
    poller: FakePoller, n: int, daemon: Callable[[], Daemon], tmp_path: Path, text: str
) -> None:
    """At the start of poll ``n``, rewrite the config file and send a reload request."""

    def hook() -> None:
        write_config(tmp_path, text)
        daemon().request_reload()

    poller.at_poll[n] = hook


async def test_reload_rejects_an_invalid_config_and_keeps_the_old_one(tmp_path: Path) -> None:
    """SIGHUP with a broken file logs config.reload_rejected; the schedule is unchanged."""
    clock = FakeClock(START)
    poller = FakePoller(clock)
    daemon = make_daemon(tmp_path, clock, poller)
    bad = CONFIG.replace('incremental = "*/2 * * * *"', 'incremental = "*/61 * * * *"')
    sighup_at(poller, 3, lambda: daemon, tmp_path, bad)  # during the 16:02 incremental
    with capture_logs() as logs:
        await daemon.run(until=START + timedelta(minutes=5))
    rejected = [e for e in logs if e["event"] == "config.reload_rejected"]
    assert len(rejected) == 1
    assert "sources['companies'].incremental" in rejected[0]["error"]
    assert "kept the running configuration" in rejected[0]["action"]
    assert [t for s, m, t in poller.calls if m == "incremental"] == [
        START + timedelta(minutes=2),
        START + timedelta(minutes=4),
    ]
    assert (
        'watcher_config_reloads_total{outcome="rejected"} 1.0' in daemon.metrics.render().decode()
    )


async def test_reload_applies_a_valid_config(tmp_path: Path) -> None:
    """SIGHUP with a good file swaps schedules (and components) without a restart."""
    clock = FakeClock(START)
    poller = FakePoller(clock)
    daemon = make_daemon(tmp_path, clock, poller)
    good = CONFIG.replace('incremental = "*/2 * * * *"', 'incremental = "*/5 * * * *"')
    sighup_at(poller, 3, lambda: daemon, tmp_path, good)
    with capture_logs() as logs:
        await daemon.run(until=START + timedelta(minutes=11))
    assert any(e["event"] == "config.reloaded" for e in logs)
    inc = [t for s, m, t in poller.calls if m == "incremental"]
    assert inc == [START + timedelta(minutes=m) for m in (2, 5, 10)]


async def test_reload_refuses_to_move_the_database(tmp_path: Path) -> None:
    """store.path cannot change under a running daemon (the lock is on the old one)."""
    clock = FakeClock(START)
    poller = FakePoller(clock)
    daemon = make_daemon(tmp_path, clock, poller)
    moved = CONFIG.replace('path = "watcher.db"', 'path = "other.db"')
    sighup_at(poller, 1, lambda: daemon, tmp_path, moved)
    with capture_logs() as logs:
        await daemon.run(until=START + timedelta(minutes=1))
    rejected = [e for e in logs if e["event"] == "config.reload_rejected"]
    assert "store.path cannot change" in rejected[0]["error"]


async def test_a_builder_error_on_reload_keeps_the_old_components(tmp_path: Path) -> None:
    """A rule file error (raised while building) is a rejected reload too."""
    clock = FakeClock(START)
    poller = FakePoller(clock)
    path = write_config(tmp_path)
    builds = 0

    async def build(_config: WatcherConfig) -> Components:
        nonlocal builds
        builds += 1
        if builds > 1:
            raise ConfigError("rules/arr.toml: rules[0].when[0]: unknown operator 'drop_by'")
        return Components(poller=poller)

    daemon = Daemon(load_config(path), build, clock=clock, config_path=path)
    poller.at_poll[1] = daemon.request_reload
    with capture_logs() as logs:
        await daemon.run(until=START + timedelta(minutes=5))
    assert [e["error"] for e in logs if e["event"] == "config.reload_rejected"] == [
        "rules/arr.toml: rules[0].when[0]: unknown operator 'drop_by'"
    ]
    assert len([c for c in poller.calls if c[1] == "incremental"]) == 2


@pytest.mark.parametrize("max_polls", [1, 3])
async def test_max_polls_runs_that_many_polls_then_returns(tmp_path: Path, max_polls: int) -> None:
    """The test/benchmark mode: stop after N finished polls."""
    clock = FakeClock(START)
    daemon = make_daemon(tmp_path, clock, FakePoller(clock))
    assert await daemon.run(max_polls=max_polls) == 0
    assert daemon.polls_finished >= max_polls


@dataclass
class CrashingDispatcher:
    runs: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("sink exploded")
        await stop.wait()


async def test_a_crashed_dispatcher_is_logged_and_started_again(tmp_path: Path) -> None:
    """The dispatch boundary: a crash is logged (dispatcher.crashed) and dispatching resumes."""
    clock = FakeClock(START)
    dispatcher = CrashingDispatcher()
    daemon = make_daemon(tmp_path, clock, FakePoller(clock), dispatcher)  # type: ignore[arg-type]
    with capture_logs() as logs:
        await daemon.run(until=START + timedelta(minutes=1))
    assert [e["error"] for e in logs if e["event"] == "dispatcher.crashed"] == [
        "RuntimeError: sink exploded"
    ]
    assert dispatcher.runs == 2


async def test_a_second_stop_request_cancels_in_flight_polls_at_once(tmp_path: Path) -> None:
    """Ctrl-C twice: no waiting for the grace period."""
    clock = FakeClock(START)
    poller = FakePoller(clock, gate=asyncio.Event())
    daemon = make_daemon(tmp_path, clock, poller, grace_s=60.0)
    task = asyncio.create_task(daemon.run())
    await settle(daemon)
    daemon.request_stop()
    await asyncio.sleep(0)
    with capture_logs() as logs:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 5) == 0
    assert any(e["event"] == "daemon.force_stop" for e in logs)


async def test_readiness_fails_when_the_database_file_is_deleted_or_replaced(
    tmp_path: Path,
) -> None:
    """SQLite keeps writing to an unlinked file: /readyz must say so."""
    clock = FakeClock(START)
    daemon = make_daemon(tmp_path, clock, FakePoller(clock))
    await daemon.run(until=START + timedelta(minutes=3))
    assert daemon.readiness().checks["store"] == "ok"
    db = tmp_path / "watcher.db"
    db.rename(tmp_path / "moved.db")
    assert daemon.readiness().checks["store"].startswith("not open")
    db.write_bytes((tmp_path / "moved.db").read_bytes())  # a copy: another inode
    state = daemon.readiness()
    assert not state.ready
    assert "replaced" in state.checks["store"]


@dataclass
class RejectingPoller:
    """Gainsight rejects the key until ``fixed_at``; then every poll succeeds."""

    clock: FakeClock
    fixed_at: datetime
    calls: list[tuple[str, datetime]] = field(default_factory=list)

    async def poll(self, source: SourceConfig, mode: Mode) -> PollReport:
        from watcher.errors import AuthError, PollError

        self.calls.append((source.name, self.clock.now()))
        if self.clock.now() < self.fixed_at:
            try:
                raise AuthError("Gainsight rejected the access key (HTTP 401)", status=401)
            except AuthError as exc:
                raise PollError(f"source {source.name!r}: full poll failed: {exc}") from exc
        return PollReport(outcome="ok", pages=1, records=3, calls=1)


async def test_a_rejected_key_backs_off_the_tenant_up_to_an_hour_and_readyz_says_why(
    tmp_path: Path,
) -> None:
    """401: polls of the tenant wait 1, 2, 5, 10, 20, 40, then 60 min; one log line per
    step; /readyz names the key setting; the first success ends the hold."""
    clock = FakeClock(START)
    poller = RejectingPoller(clock, fixed_at=START + timedelta(hours=4))
    daemon = make_daemon(tmp_path, clock, poller)  # type: ignore[arg-type]
    with capture_logs() as logs:
        await daemon.run(until=START + timedelta(hours=3, minutes=50))
    steps = [e for e in logs if e["event"] == "gainsight.auth_backoff"]
    # failures at 0, 1, 3, 8, 18, 38, 78, 138, 198 minutes (then held past 3h50)
    assert [e["retry_in_s"] for e in steps] == [60, 120, 300, 600, 1200, 2400, 3600, 3600, 3600]
    assert [e["step"] for e in steps] == list(range(1, 10))
    # every source stopped asking while held: at most 2 sources x 9 rounds
    assert len(poller.calls) <= 2 * 9
    ready = daemon.readiness()
    assert ready.ready is False
    assert "access key rejected" in ready.checks["gainsight"]
    assert "gainsight.access_key_env" in ready.checks["gainsight"]
    with capture_logs() as logs:
        await daemon.run(until=START + timedelta(hours=6))
    assert any(e["event"] == "gainsight.auth_restored" for e in logs)
    assert "gainsight" not in daemon.readiness().checks
