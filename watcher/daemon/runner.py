"""The daemon: schedules polls, runs the dispatcher and the HTTP server, obeys signals.

The parts it drives are injected through small protocols (:class:`Poller`,
:class:`Dispatcher`) bundled in :class:`Components`, built from a config by a
:data:`Builder`; :mod:`watcher.daemon.wiring` builds the real ones. The clock is
injected too, and :meth:`Daemon.run` takes ``until`` / ``max_polls`` so tests drive
whole days of schedule with a :class:`~watcher.clock.FakeClock` and no sleeping.

Lifecycle::

    start: build components, load last starts, serve HTTP, start dispatcher, READY=1
    loop:  start every due job whose lane is idle (one poll per source at a time, and
           beside it the source's fast lane: ``poll_every``, stretched while idle)
    SIGHUP: build the new config's components; on error log config.reload_rejected
            and keep the old ones; else swap (in-flight polls finish on the old)
    daily: apply the [store] retention (first 10 minutes after start), in a thread
    SIGTERM: STOPPING=1; start nothing new; within one ``grace_s`` in all: in-flight
            polls commit (else are cancelled: their open transaction rolls back), the
            dispatcher finishes its in-flight attempts (else they are cancelled and
            sent again after the restart), a running purge stops between batches;
            HTTP closes; exit 0. A hung delivery handler never holds the exit.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from watcher.clock import Clock
from watcher.config import WatcherConfig
from watcher.daemon.components import Builder, Components, Dispatcher, Poller, PollReport
from watcher.daemon.fastlane import Lane
from watcher.daemon.http import EventSignal, HttpServer
from watcher.daemon.lifecycle import Lifecycle
from watcher.daemon.metrics import Metrics
from watcher.daemon.schedule import Job, due_at, jobs_for, next_wake, plan, reschedule
from watcher.daemon.sdnotify import Notifier
from watcher.daemon.supervision import (
    AUTH_BACKOFF_S,
    DISPATCHER_RESTART_S,
    PURGE_AFTER_START_S,
    PURGE_EVERY_S,
    AuthHold,
    DispatcherSupervisor,
    Purger,
    auth_backoff_s,
    is_auth_failure,
    start_watchdog,
)
from watcher.errors import WatcherError
from watcher.logging import get_logger, redact
from watcher.store.schedule import ScheduleState
from watcher.store.view import StoreView

__all__ = [  # the daemon's public names, wherever they are defined
    "AUTH_BACKOFF_S",
    "DISPATCHER_RESTART_S",
    "PURGE_AFTER_START_S",
    "PURGE_EVERY_S",
    "Builder",
    "Components",
    "Daemon",
    "Dispatcher",
    "PollReport",
    "Poller",
    "auth_backoff_s",
    "is_auth_failure",
]

log = get_logger("watcher.daemon")


class Daemon(Lifecycle):
    """``watcher run``; see the module docstring for the lifecycle. This module holds
    the schedule loop and the poll bookkeeping; :class:`Lifecycle` the rest."""

    def __init__(
        self,
        config: WatcherConfig,
        build: Builder,
        *,
        clock: Clock,
        config_path: Path | None = None,
        base_dir: Path | None = None,
        notifier: Notifier | None = None,
        metrics: Metrics | None = None,
        every_s: float | None = None,
        grace_s: float = 20.0,
        serve_http: bool = True,
        purge_after_s: float | None = PURGE_AFTER_START_S,
    ) -> None:
        self.config = config
        self._build = build
        self.clock = clock
        self.config_path = config_path
        self.base_dir = base_dir or (config_path.parent if config_path else Path.cwd())
        self.notifier = notifier or Notifier({})
        self.view = StoreView(self._db_path(config))
        self.state = ScheduleState(self._db_path(config))
        self.metrics = metrics or Metrics(lambda: self.view.stats(self.clock.now()))
        self.metrics.watch_sinks(self.sink_health)
        self.every_s = every_s
        self.grace_s = grace_s
        self.serve_http = serve_http
        self.signal = EventSignal()
        self.http: HttpServer | None = None
        self.polls_finished = 0
        self.last_result: dict[str, tuple[datetime, bool]] = {}
        self._jobs: list[Job] = []
        self._due: dict[Job, datetime] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, Job] = {}
        #: When each lane's last poll started (schedule.plan: no mode starves in a lane).
        self._lane_started: dict[str, datetime] = {}
        self._lanes: dict[str, Lane] = {}  # each fast lane's current interval, by source
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._reload_requested = False
        self._components: Components | None = None
        self.supervisor = DispatcherSupervisor(clock)
        self.purger = Purger(purge_after_s)
        self.auth = AuthHold()
        self._seen_sequence = 0
        self._store_inode: int | None = None
        self._status = "no poll yet"
        #: Set once the daemon is up (READY=1 sent); tests and the demo await it.
        self.started = asyncio.Event()
        #: Set after each reload attempt (applied or rejected).
        self.reload_finished = asyncio.Event()
        self._poll_signal = EventSignal()

    async def wait_for_polls(self, count: int) -> None:
        """Return once ``count`` polls have finished since start (tests, the demo)."""
        while self.polls_finished < count:
            await self._poll_signal.wait(60.0)

    # -- run --------------------------------------------------------------------

    async def run(self, *, until: datetime | None = None, max_polls: int | None = None) -> int:
        """Run until stopped (or, for tests and benchmarks, until ``until`` on the
        injected clock / ``max_polls`` polls have finished). Returns the exit code."""
        await asyncio.to_thread(self.state.migrate)
        self._components = await self._build_checked(self.config)
        try:
            self._seen_sequence = await asyncio.to_thread(self.view.max_sequence)
            self._store_inode = self.view.inode()
            await self._load_schedule()
            http_task = await self._start_http()
        except BaseException:
            await self._close_components()
            raise
        self._start_dispatcher()
        watchdog = start_watchdog(self.notifier)
        log.info(
            "daemon.started",
            sources=[s.name for s in self.config.sources],
            http=self.config.http.listen if self.config.http and self.http else None,
            **dict(self._components.summary),
        )
        self.notifier.ready(self._status_line("ready"))
        self.purger.started(self.clock.now())
        self.started.set()
        try:
            await self._loop(until, max_polls)
        finally:
            await self._shutdown(http_task, watchdog)
        return 0

    async def _load_schedule(self) -> None:
        last = await asyncio.to_thread(self.state.load)
        outcomes = await asyncio.to_thread(self.state.last_outcomes)
        for source, (finish, outcome) in outcomes.items():
            self.last_result[source] = (finish, PollReport(outcome=outcome).ok)
            if PollReport(outcome=outcome).ok:
                self.metrics.last_success.labels(source=source).set(finish.timestamp())
        self._jobs = jobs_for(self.config, every_s=self.every_s)
        self._due = reschedule(self._jobs, last, self.clock.now())

    async def _loop(self, until: datetime | None, max_polls: int | None) -> None:
        while not self._stop.is_set():
            if self._reload_requested:
                self._reload_requested = False
                try:
                    await self._reload()
                finally:
                    self.reload_finished.set()
            now = self.clock.now()
            self.purger.maybe_start(now, self._db_path(self.config), self.config.store)
            if until is not None and now >= until and not self._tasks:
                return
            if max_polls is not None and self.polls_finished >= max_polls:
                return
            held = self.auth.held(now)
            if (until is None or now < until) and not held:
                started = plan(
                    self._due, now, running=set(self._tasks), lane_started=self._lane_started
                )
                for job in started:
                    self._start(job)
                if started:
                    await asyncio.sleep(0)  # let polls that finish at once do so first
            wake = next_wake(self._due, running=set(self._tasks))
            hold_until, purge_at = self.auth.until, self.purger.next_at
            if held and hold_until is not None and (wake is None or wake < hold_until):
                wake = hold_until
            if purge_at is not None and (wake is None or purge_at < wake):
                wake = purge_at
            if until is not None and (wake is None or wake > until):
                wake = until
            delay = None if wake is None else max(0.0, (wake - self.clock.now()).total_seconds())
            await self._wait(delay)

    async def _wait(self, delay: float | None) -> None:
        waiters: list[asyncio.Task[Any]] = [
            asyncio.create_task(self._wake.wait()),
            asyncio.create_task(self._stop.wait()),
        ]
        if delay is not None:
            waiters.append(asyncio.create_task(self.clock.sleep(delay)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiters:
                task.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        self._wake.clear()

    # -- polls ------------------------------------------------------------------

    def _start(self, job: Job) -> None:
        del self._due[job]
        components = self._components
        if components is None:  # the loop starts polls only once components are built
            raise WatcherError(f"poll of {job.source!r} asked for before the daemon started")
        start, t0 = self.clock.now(), self.clock.monotonic()
        self._lane_started[job.lane] = start
        task = asyncio.create_task(
            self._poll(job, components, start, t0), name=f"poll:{job.source}"
        )
        self._tasks[job.lane] = task
        self._running[job.lane] = job
        task.add_done_callback(lambda _t: self._wake.set())

    async def _poll(self, job: Job, components: Components, start: datetime, t0: float) -> None:
        source = self.config.source(job.source)
        try:
            report = await components.poller.poll(source, job.mode)
        except asyncio.CancelledError:
            self._finish(job, start, PollReport(outcome="cancelled"), t0)
            raise
        except WatcherError as exc:
            report = PollReport(outcome="failed", error=redact(str(exc)), auth=is_auth_failure(exc))
        except Exception as exc:  # noqa: BLE001 - the one per-poll boundary: record, count, carry on
            report = PollReport(outcome="failed", error=redact(f"{type(exc).__name__}: {exc}"))
        self._finish(job, start, report, t0)

    def _finish(self, job: Job, start: datetime, report: PollReport, t0: float) -> None:
        self._tasks.pop(job.lane, None)
        self._running.pop(job.lane, None)
        finish = self.clock.now()
        duration = max(0.0, self.clock.monotonic() - t0)
        self.polls_finished += 1
        self._poll_signal.notify()
        self.metrics.polls.labels(source=job.source, mode=job.mode, outcome=report.outcome).inc()
        self.metrics.poll_duration.labels(source=job.source, mode=job.mode).observe(duration)
        if report.ok:
            self.metrics.last_success.labels(source=job.source).set(finish.timestamp())
        self.last_result[job.source] = (finish, report.ok)
        self.auth.note(rejected=report.auth, ok=report.ok, finish=finish)
        if not report.logged:
            emit = log.info if report.ok else log.warning
            emit(
                "poll.finished",
                source=job.source,
                mode=job.mode,
                outcome=report.outcome,
                pages=report.pages,
                records=report.records,
                calls=report.calls,
                events=report.events,
                duration=round(duration, 3),
                **({"error": report.error} if report.error else {}),
            )
        if report.outcome != "cancelled":
            try:
                self.state.record(job.source, job.mode, start, finish, report.outcome)
            except WatcherError as exc:
                log.warning("schedule.record_failed", source=job.source, error=str(exc))
            if job in self._jobs:
                self._due[job] = self._next_due(job, start, finish, report)
        self._count_new_events()
        if report.events and self._components and self._components.wake_dispatcher:
            self._components.wake_dispatcher()
        self._status = (
            f"last poll {job.source}/{job.mode} {report.outcome} at "
            f"{finish.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )
        self.notifier.status(self._status_line())

    def _next_due(
        self, job: Job, start: datetime, finish: datetime, report: PollReport
    ) -> datetime:
        """A cron job's next slot; a fast-lane job's next read after its lane's wait,
        which stretches while incremental reads find nothing and snaps back on a change."""
        if not job.fast or job.every_s is None or job.every_max_s is None:
            return due_at(job, start, finish)
        lane = self._lanes.get(job.source)
        if lane is None:
            lane = Lane.start(job.every_s, job.every_max_s)
        changed = report.events > 0
        if job.mode == "incremental" or changed:
            lane = lane.after_round(changed)
        self._lanes[job.source] = lane
        return max(finish, start + timedelta(seconds=lane.wait_s(job.mode)))

    def _count_new_events(self) -> None:
        try:
            counts, top = self.view.event_types_after(self._seen_sequence)
        except WatcherError:
            return
        for type_, n in counts.items():
            self.metrics.events.labels(type=type_).inc(n)
        if top > self._seen_sequence:
            self._seen_sequence = top
            self.signal.notify()

    def _status_line(self, prefix: str | None = None) -> str:
        return f"{prefix}; {self._status}" if prefix else self._status
