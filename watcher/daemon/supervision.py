"""The daemon's helpers that run beside the schedule loop: the dispatcher under
supervision (restarted when it crashes, stopped within a grace period), the
retention purge (10 minutes after start, then daily, in a thread), the systemd
watchdog, and the back-off while Gainsight rejects the access key."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from datetime import datetime, timedelta
from pathlib import Path

from watcher.clock import Clock
from watcher.config import StoreConfig
from watcher.daemon.components import Dispatcher
from watcher.daemon.sdnotify import Notifier
from watcher.errors import AuthError, WatcherError
from watcher.logging import get_logger, redact

log = get_logger("watcher.daemon")

DISPATCHER_RESTART_S = 5.0
AUTH_BACKOFF_S = (60.0, 120.0, 300.0, 600.0, 1200.0, 2400.0, 3600.0)  # then hourly
#: The retention purge runs this long after start, then once a day.
PURGE_AFTER_START_S = 600.0
PURGE_EVERY_S = 24 * 3600.0


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


class AuthHold:
    """A rejected access key holds every poll of the tenant, 1 min doubling to 1 h;
    one log line per step; the first poll that succeeds ends the hold."""

    def __init__(self) -> None:
        self.step = 0  # consecutive rejections of the access key
        self.until: datetime | None = None  # no poll of the tenant starts before

    def held(self, now: datetime) -> bool:
        return self.until is not None and now < self.until

    def note(self, *, rejected: bool, ok: bool, finish: datetime) -> None:
        if rejected:
            if self.until is not None and finish < self.until:
                return  # another source of the same step: already counted
            self.step += 1
            delay = auth_backoff_s(self.step)
            self.until = finish + timedelta(seconds=delay)
            log.warning(
                "gainsight.auth_backoff",
                step=self.step,
                retry_in_s=delay,
                retry_at=self.until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                setting="gainsight.access_key_env / gainsight.access_key_file",
            )
        elif ok and self.step:
            log.info("gainsight.auth_restored", after_steps=self.step)
            self.step = 0
            self.until = None

    def problem(self) -> str | None:
        """Why the daemon is not ready while the key is rejected (``None``: it is not)."""
        if not self.step or self.until is None:
            return None
        return (
            f"access key rejected ({self.step} time(s) in a row); polls wait until "
            f"{self.until.strftime('%Y-%m-%dT%H:%M:%SZ')}; check "
            "gainsight.access_key_env / gainsight.access_key_file"
        )


class DispatcherSupervisor:
    """Runs one dispatcher at a time; a crash is logged and the dispatcher started again."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    def start(self, dispatcher: Dispatcher | None) -> None:
        if dispatcher is None:
            return
        self._stop = asyncio.Event()
        self.task = asyncio.create_task(self._supervise(dispatcher, self._stop), name="dispatcher")

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

    async def stop(self, within_s: float) -> None:
        """Ask the dispatcher to finish its in-flight attempts; cancel it after ``within_s``."""
        task, stop = self.task, self._stop
        self.task = self._stop = None
        if task is None or stop is None:
            return
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=within_s)
        if not done:
            log.warning("dispatcher.stop_timeout", grace_s=round(within_s, 3))
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(task, return_exceptions=True)


class Purger:
    """The ``[store]`` retention purge: first ``after_s`` (default
    :data:`PURGE_AFTER_START_S`) after start, then every :data:`PURGE_EVERY_S`, one at a
    time, in a thread; it stops between batches when :meth:`halt` is called.
    ``after_s=None`` schedules none (``watcher purge`` still works)."""

    def __init__(self, after_s: float | None = PURGE_AFTER_START_S) -> None:
        self.after_s = after_s
        self.next_at: datetime | None = None
        self.task: asyncio.Task[None] | None = None
        self._stop = threading.Event()

    def started(self, now: datetime) -> None:
        if self.after_s is not None:
            self.next_at = now + timedelta(seconds=self.after_s)

    def maybe_start(self, now: datetime, path: Path, store: StoreConfig) -> None:
        if self.next_at is None or now < self.next_at:
            return
        if self.task is not None and not self.task.done():
            return
        self.next_at = now + timedelta(seconds=PURGE_EVERY_S)
        self.task = asyncio.create_task(self._purge(now, path, store), name="purge")

    async def _purge(self, now: datetime, path: Path, store: StoreConfig) -> None:
        from watcher.store.retention import purge_file

        try:
            result = await asyncio.to_thread(purge_file, path, store, now, stop=self._stop.is_set)
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

    def halt(self) -> None:
        """A running purge stops after its current batch (shutdown)."""
        self._stop.set()

    async def wait(self, within_s: float) -> None:
        if self.task is not None:  # it stops between batches
            await asyncio.wait({self.task}, timeout=within_s)


def start_watchdog(notifier: Notifier) -> asyncio.Task[None] | None:
    """Ping systemd's watchdog at the interval it asks for (``None``: it asks for none)."""
    interval = notifier.watchdog_interval
    if not notifier.enabled or interval is None:
        return None

    async def ping() -> None:
        while True:
            notifier.watchdog()
            await asyncio.sleep(interval)

    return asyncio.create_task(ping(), name="watchdog")
