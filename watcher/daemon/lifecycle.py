"""The daemon's lifecycle around its schedule loop: start-up pieces (HTTP server),
SIGHUP reload, readiness, SIGTERM shutdown. :class:`Lifecycle` is the base of
:class:`~watcher.daemon.runner.Daemon`, which holds the state both share and the loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from watcher.clock import Clock
from watcher.config import WatcherConfig, is_loopback_host, load_config, resolve_secret
from watcher.daemon.components import Builder, Components
from watcher.daemon.health import Readiness, assess, store_check
from watcher.daemon.http import EventSignal, HttpServer, bind, create_app
from watcher.daemon.http_guard import guard
from watcher.daemon.metrics import Metrics
from watcher.daemon.schedule import Job, jobs_for, reschedule
from watcher.daemon.sdnotify import Notifier
from watcher.daemon.supervision import AuthHold, DispatcherSupervisor, Purger
from watcher.errors import ConfigError, WatcherError
from watcher.logging import get_logger, redact, register_secret
from watcher.store.db import store_path
from watcher.store.schedule import ScheduleState
from watcher.store.view import StoreView

log = get_logger("watcher.daemon")


class Lifecycle:
    """Start, reload, readiness and shutdown of a :class:`~watcher.daemon.runner.Daemon`."""

    config: WatcherConfig
    clock: Clock
    config_path: Path | None
    base_dir: Path
    notifier: Notifier
    view: StoreView
    state: ScheduleState
    metrics: Metrics
    every_s: float | None
    grace_s: float
    serve_http: bool
    signal: EventSignal
    http: HttpServer | None
    polls_finished: int
    last_result: dict[str, tuple[datetime, bool]]
    reload_finished: asyncio.Event
    supervisor: DispatcherSupervisor
    purger: Purger
    auth: AuthHold
    _build: Builder
    _components: Components | None
    _jobs: list[Job]
    _due: dict[Job, datetime]
    _tasks: dict[str, asyncio.Task[None]]
    _running: dict[str, Job]
    _stop: asyncio.Event
    _wake: asyncio.Event
    _reload_requested: bool
    _store_inode: int | None

    def _db_path(self, config: WatcherConfig) -> Path:
        return store_path(config, self.base_dir)

    # -- control (signal handlers call these) -----------------------------------

    def request_stop(self) -> None:
        """SIGTERM/SIGINT: stop gracefully; a second request stops at once (polls roll
        back, in-flight deliveries are retried after the restart)."""
        if not self._stop.is_set():
            self._stop.set()
            return
        log.warning("daemon.force_stop", in_flight=len(self._tasks))
        for task in [*self._tasks.values(), self.supervisor.task]:
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
        problem = self.auth.problem()
        if problem is not None:
            readiness.ready = False
            readiness.checks["gainsight"] = problem
        return readiness

    def sink_health(self) -> dict[str, str]:
        """``{sink: "ok" | why degraded}`` of the running components."""
        components = self._components
        if components is None or components.sink_health is None:
            return {}
        return dict(components.sink_health())

    # -- start ------------------------------------------------------------------

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
        if components is not None:
            self.supervisor.start(components.dispatcher)

    async def _build_checked(self, config: WatcherConfig) -> Components:
        """Build ``config``'s components; a file too deeply nested to parse is a
        configuration error (exit 2 at start: restarting cannot fix it)."""
        try:
            return await self._build(config)
        except RecursionError:
            raise ConfigError(
                "a rules or config file is nested too deeply to read; flatten it"
            ) from None

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
        await self.supervisor.stop(self.grace_s)
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
        self.purger.halt()
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
        await self.supervisor.stop(remaining())
        await self.purger.wait(remaining())
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
