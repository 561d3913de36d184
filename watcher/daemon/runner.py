"""The daemon: schedules polls, runs the dispatcher and the HTTP server, obeys signals.

The parts it drives are injected through small protocols (:class:`Poller`,
:class:`Dispatcher`) bundled in :class:`Components`, built from a config by a
:data:`Builder`; :mod:`watcher.daemon.wiring` builds the real ones. The clock is
injected too, and :meth:`Daemon.run` takes ``until`` / ``max_polls`` so tests drive
whole days of schedule with a :class:`~watcher.clock.FakeClock` and no sleeping.

Lifecycle::

    start: build components, load last starts, serve HTTP, start dispatcher, READY=1
    loop:  start every due job whose source is idle (one poll per source at a time)
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
import contextlib
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from watcher.clock import Clock
from watcher.config import (
    SourceConfig,
    WatcherConfig,
    is_loopback_host,
    load_config,
    resolve_secret,
)
from watcher.daemon.health import Readiness, assess, store_check
from watcher.daemon.http import EventSignal, HttpServer, bind, create_app
from watcher.daemon.http_guard import guard
from watcher.daemon.metrics import Metrics
from watcher.daemon.schedule import (
    Job,
    Mode,
    due_at,
    jobs_for,
    next_wake,
    plan,
    reschedule,
)
from watcher.daemon.sdnotify import Notifier
from watcher.daemon.state import ScheduleState, StoreView
from watcher.errors import AuthError, ConfigError, WatcherError
from watcher.logging import get_logger, redact, register_secret

log = get_logger("watcher.daemon")

DISPATCHER_RESTART_S = 5.0
AUTH_BACKOFF_S = (60.0, 120.0, 300.0, 600.0, 1200.0, 2400.0, 3600.0)  # then hourly


def auth_backoff_s(step: int) -> float:
    """Seconds to wait after the ``step``-th consecutive rejection of the key (1-based)."""
    return AUTH_BACKOFF_S[min(step, len(AUTH_BACKOFF_S)) - 1]


def is_auth_failure(exc: BaseException) -> bool:
    """``exc`` or what it wraps is an :class:`AuthError` (a rejected access key)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, AuthError):
            return True
        seen = seen.__cause__
    return False


#: The retention purge runs this long after start, then once a day.
PURGE_AFTER_START_S = 600.0
PURGE_EVERY_S = 24 * 3600.0


@dataclass(frozen=True)
class PollReport:
    """What one poll did; ``logged`` when the engine already wrote ``poll.finished``."""

    outcome: str = "ok"
    pages: int = 0
    records: int = 0
    calls: int = 0
    events: int = 0
    error: str | None = None
    logged: bool = False
    auth: bool = False  # Gainsight rejected the access key (401/403): back off the tenant

    @property
    def ok(self) -> bool:
        return self.outcome in ("ok", "success", "succeeded", "completed", "held")


class Poller(Protocol):
    async def poll(self, source: SourceConfig, mode: Mode) -> PollReport: ...


class Dispatcher(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass
class Components:
    """Everything one config version needs; ``aclose`` releases it."""

    poller: Poller
    dispatcher: Dispatcher | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    aclose: Callable[[], Awaitable[None]] | None = None
    wake_dispatcher: Callable[[], None] | None = None
    #: ``{sink: "ok" | why degraded}`` (stuck Python handlers); read by /readyz, /metrics.
    sink_health: Callable[[], Mapping[str, str]] | None = None
    #: The loaded rules' names, for the status page.
    rule_names: tuple[str, ...] = ()


Builder = Callable[[WatcherConfig], Awaitable[Components]]


class Daemon:
    """``watcher run``; see the module docstring for the lifecycle."""

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
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._reload_requested = False
        self._components: Components | None = None
        self._dispatch_stop: asyncio.Event | None = None
        self._dispatch_task: asyncio.Task[None] | None = None
        self._seen_sequence = 0
        self._store_inode: int | None = None
        self._status = "no poll yet"
        #: Set once the daemon is up (READY=1 sent); tests and the demo await it.
        self.started = asyncio.Event()
        #: Set after each reload attempt (applied or rejected).
        self.reload_finished = asyncio.Event()
        self._poll_signal = EventSignal()
        self._auth_step = 0  # consecutive rejections of the access key
        self._auth_until: datetime | None = None  # no poll of the tenant starts before
        self._next_purge: datetime | None = None
        self._purge_task: asyncio.Task[None] | None = None
        self._purge_stop = threading.Event()

    def _db_path(self, config: WatcherConfig) -> Path:
        path = Path(config.store.path)
        return path if path.is_absolute() else self.base_dir / path

    # -- control (signal handlers call these) -----------------------------------

    def request_stop(self) -> None:
        """SIGTERM/SIGINT: stop gracefully; a second request stops at once (polls roll
        back, in-flight deliveries are retried after the restart)."""
        if not self._stop.is_set():
            self._stop.set()
            return
        log.warning("daemon.force_stop", in_flight=len(self._tasks))
        for task in [*self._tasks.values(), self._dispatch_task]:
            if task is not None:
                task.cancel()

    def request_reload(self) -> None:
        self.reload_finished.clear()
        self._reload_requested = True
        self._wake.set()

    def install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

    async def wait_for_polls(self, count: int) -> None:
        """Return once ``count`` polls have finished since start (tests, the demo)."""
        while self.polls_finished < count:
            await self._poll_signal.wait(60.0)

    def status(self) -> dict[str, Any]:
        """What ``watcher status`` shows, for ``GET /`` and ``GET /v1/status``."""
        from watcher.daemon.status import collect

        components = self._components
        return collect(
            self.config,
            db_path=self._db_path(self.config),
            now=self.clock.now(),
            rules=list(components.rule_names) if components else [],
            config_path=str(self.config_path) if self.config_path else None,
            serving_pid=os.getpid(),
        )

    @property
    def http_port(self) -> int | None:
        return self.http.port if self.http else None

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
        watchdog = self._start_watchdog()
        log.info(
            "daemon.started",
            sources=[s.name for s in self.config.sources],
            http=self.config.http.listen if self.config.http and self.http else None,
            **dict(self._components.summary),
        )
        self.notifier.ready(self._status_line("ready"))
        self._next_purge = self.clock.now() + timedelta(seconds=PURGE_AFTER_START_S)
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
            self._maybe_purge(now)
            if until is not None and now >= until and not self._tasks:
                return
            if max_polls is not None and self.polls_finished >= max_polls:
                return
            held = self._auth_until is not None and now < self._auth_until
            if (until is None or now < until) and not held:
                started = plan(self._due, now, running=set(self._tasks))
                for job in started:
                    self._start(job)
                if started:
                    await asyncio.sleep(0)  # let polls that finish at once do so first
            wake = next_wake(self._due, running=set(self._tasks))
            if held and self._auth_until is not None and (wake is None or wake < self._auth_until):
                wake = self._auth_until
            if self._next_purge is not None and (wake is None or self._next_purge < wake):
                wake = self._next_purge
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
        assert components is not None
        start, t0 = self.clock.now(), self.clock.monotonic()
        task = asyncio.create_task(
            self._poll(job, components, start, t0), name=f"poll:{job.source}"
        )
        self._tasks[job.source] = task
        self._running[job.source] = job
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
        self._tasks.pop(job.source, None)
        self._running.pop(job.source, None)
        finish = self.clock.now()
        duration = max(0.0, self.clock.monotonic() - t0)
        self.polls_finished += 1
        self._poll_signal.notify()
        self.metrics.polls.labels(source=job.source, mode=job.mode, outcome=report.outcome).inc()
        self.metrics.poll_duration.labels(source=job.source, mode=job.mode).observe(duration)
        if report.ok:
            self.metrics.last_success.labels(source=job.source).set(finish.timestamp())
        self.last_result[job.source] = (finish, report.ok)
        self._note_auth(report, finish)
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
                self._due[job] = due_at(job, start, finish)
        self._count_new_events()
        if report.events and self._components and self._components.wake_dispatcher:
            self._components.wake_dispatcher()
        self._status = (
            f"last poll {job.source}/{job.mode} {report.outcome} at "
            f"{finish.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )
        self.notifier.status(self._status_line())

    def _note_auth(self, report: PollReport, finish: datetime) -> None:
        """A rejected access key holds every poll of the tenant, 1 min doubling to 1 h;
        one log line per step; the first poll that succeeds ends the hold."""
        if report.auth:
            if self._auth_until is not None and finish < self._auth_until:
                return  # another source of the same step: already counted
            self._auth_step += 1
            delay = auth_backoff_s(self._auth_step)
            self._auth_until = finish + timedelta(seconds=delay)
            log.warning(
                "gainsight.auth_backoff",
                step=self._auth_step,
                retry_in_s=delay,
                retry_at=self._auth_until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                setting="gainsight.access_key_env / gainsight.access_key_file",
            )
        elif report.ok and self._auth_step:
            log.info("gainsight.auth_restored", after_steps=self._auth_step)
            self._auth_step = 0
            self._auth_until = None

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

    # -- retention ----------------------------------------------------------------

    def _maybe_purge(self, now: datetime) -> None:
        if self._next_purge is None or now < self._next_purge:
            return
        if self._purge_task is not None and not self._purge_task.done():
            return
        self._next_purge = now + timedelta(seconds=PURGE_EVERY_S)
        self._purge_task = asyncio.create_task(self._purge(now), name="purge")

    async def _purge(self, now: datetime) -> None:
        from watcher.store.retention import purge_file

        path, store = self._db_path(self.config), self.config.store
        try:
            result = await asyncio.to_thread(
                purge_file, path, store, now, stop=self._purge_stop.is_set
            )
        except WatcherError as exc:
            log.warning("store.purge_failed", error=redact(str(exc)))
            return
        log.info(
            "store.purged",
            events=result.events,
            delivered=result.delivered,
            dead=result.dead,
            polls=result.polls,
            freed_bytes=result.freed_bytes,
        )

    # -- readiness ----------------------------------------------------------------

    def readiness(self) -> Readiness:
        """Store open, every source's last poll recent and successful, no sink degraded; not while
        Gainsight rejects the access key (the ``gainsight`` check says why)."""
        readiness = assess(
            store=store_check(self._store_inode, self.view.inode(), self.view.is_open()),
            sources=[s.name for s in self.config.sources],
            jobs=self._jobs,
            last=dict(self.last_result),
            now=self.clock.now(),
            sinks=self.sink_health(),
        )
        if self._auth_step and self._auth_until is not None:
            readiness.ready = False
            readiness.checks["gainsight"] = (
                f"access key rejected ({self._auth_step} time(s) in a row); polls wait until "
                f"{self._auth_until.strftime('%Y-%m-%dT%H:%M:%SZ')}; check "
                "gainsight.access_key_env / gainsight.access_key_file"
            )
        return readiness

    def sink_health(self) -> dict[str, str]:
        """``{sink: "ok" | why degraded}`` of the running components."""
        components = self._components
        if components is None or components.sink_health is None:
            return {}
        return dict(components.sink_health())

    # -- http, dispatcher, watchdog -------------------------------------------

    async def _start_http(self) -> asyncio.Task[None] | None:
        http = self.config.http
        if http is None or not self.serve_http:
            return None
        token = None
        if http.feed_token is not None:
            token = resolve_secret(http.feed_token, base_dir=self.base_dir)
            register_secret(token)
        app = create_app(
            view=self.view,
            metrics=self.metrics,
            readiness=self.readiness,
            token=token,
            signal=self.signal,
            status=self.status,
            status_needs_token=not is_loopback_host(http.host),
        )
        guarded = guard(app, listen_host=http.host, allowed_hosts=http.allowed_hosts, token=token)
        self.http = HttpServer(guarded, bind(http.host, http.port))
        task = asyncio.create_task(self.http.serve(), name="http")
        log.info("http.listening", listen=f"{http.host}:{self.http.port}")
        return task

    def _start_dispatcher(self) -> None:
        components = self._components
        if components is None or components.dispatcher is None:
            return
        self._dispatch_stop = asyncio.Event()
        self._dispatch_task = asyncio.create_task(
            self._supervise(components.dispatcher, self._dispatch_stop), name="dispatcher"
        )

    async def _supervise(self, dispatcher: Dispatcher, stop: asyncio.Event) -> None:
        """Run the dispatcher until it returns; if it crashes, log it and start it again."""
        while not stop.is_set():
            try:
                await dispatcher.run(stop)
            except Exception as exc:  # the dispatch boundary: log, restart, carry on
                log.exception("dispatcher.crashed", error=redact(f"{type(exc).__name__}: {exc}"))
                await self.clock.sleep(DISPATCHER_RESTART_S)
            else:
                return

    async def _stop_dispatcher(self, within_s: float | None = None) -> None:
        task, stop = self._dispatch_task, self._dispatch_stop
        self._dispatch_task = self._dispatch_stop = None
        if task is None or stop is None:
            return
        stop.set()
        limit = self.grace_s if within_s is None else within_s
        done, _ = await asyncio.wait({task}, timeout=limit)
        if not done:
            log.warning("dispatcher.stop_timeout", grace_s=round(limit, 3))
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(task, return_exceptions=True)

    def _start_watchdog(self) -> asyncio.Task[None] | None:
        interval = self.notifier.watchdog_interval
        if not self.notifier.enabled or interval is None:
            return None

        async def ping() -> None:
            while True:
                self.notifier.watchdog()
                await asyncio.sleep(interval)

        return asyncio.create_task(ping(), name="watchdog")

    # -- reload -------------------------------------------------------------------

    async def _reload(self) -> None:
        path = self.config_path
        if path is None:
            log.warning("config.reload_ignored", reason="no config file to reload")
            return
        try:
            new = await asyncio.to_thread(load_config, path)
            self._check_same_store(new, path)
            components = await self._build_checked(new)
        except Exception as exc:  # noqa: BLE001 - the reload boundary: whatever failed, keep running
            self.metrics.reloads.labels(outcome="rejected").inc()
            error = str(exc) if isinstance(exc, WatcherError) else f"{type(exc).__name__}: {exc}"
            log.error(  # noqa: TRY400 - one clear line; a traceback adds nothing here
                "config.reload_rejected",
                path=str(path),
                error=redact(error)[:1000],
                action="kept the running configuration; fix the file and send SIGHUP again",
            )
            return
        old = self._components
        await self._stop_dispatcher()
        self.config = new
        self._components = components
        last = await asyncio.to_thread(self.state.load)
        self._jobs = jobs_for(new, every_s=self.every_s)
        running = set(self._running.values())
        self._due = reschedule([j for j in self._jobs if j not in running], last, self.clock.now())
        self._start_dispatcher()
        if old is not None and old.aclose is not None:
            in_flight = list(self._tasks.values())
            asyncio.create_task(_close_after(old.aclose, in_flight), name="retire")  # noqa: RUF006 - awaited by the in-flight polls' end
        self.metrics.reloads.labels(outcome="applied").inc()
        log.info(
            "config.reloaded",
            path=str(path),
            sources=[s.name for s in new.sources],
            **dict(components.summary),
        )

    def _check_same_store(self, new: WatcherConfig, path: Path) -> None:
        if self._db_path(new) != self._db_path(self.config):
            raise ConfigError(
                f"{path}: store.path cannot change while running; restart watcher to "
                "use another database"
            )

    async def _build_checked(self, config: WatcherConfig) -> Components:
        """Build ``config``'s components; a file too deeply nested to parse is a
        configuration error (exit 2 at start: restarting cannot fix it)."""
        try:
            return await self._build(config)
        except RecursionError:
            raise ConfigError(
                "a rules or config file is nested too deeply to read; flatten it"
            ) from None

    # -- shutdown ---------------------------------------------------------------

    async def _close_components(self) -> None:
        components, self._components = self._components, None
        if components is not None and components.aclose is not None:
            await components.aclose()

    async def _shutdown(
        self, http_task: asyncio.Task[None] | None, watchdog: asyncio.Task[None] | None
    ) -> None:
        self.notifier.stopping("stopping: finishing in-flight work")
        in_flight = list(self._tasks.values())
        log.info("daemon.stopping", in_flight=len(in_flight), grace_s=self.grace_s)
        self._purge_stop.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace_s

        def remaining() -> float:
            return max(0.0, deadline - loop.time())

        if in_flight:
            _, pending = await asyncio.wait(in_flight, timeout=remaining())
            for task in pending:
                log.warning("poll.cancelled", source=task.get_name().removeprefix("poll:"))
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
        await self._stop_dispatcher(remaining())
        if self._purge_task is not None:  # it stops between batches
            await asyncio.wait({self._purge_task}, timeout=remaining())
        if http_task is not None and self.http is not None:
            self.http.stop()
            await asyncio.gather(http_task, return_exceptions=True)
        if watchdog is not None:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        await self._close_components()
        log.info("daemon.stopped", polls=self.polls_finished)
        self.notifier.close()


async def _close_after(
    aclose: Callable[[], Awaitable[None]], tasks: list[asyncio.Task[None]]
) -> None:
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    await aclose()
