"""Client-side request budget shared by every source of one tenant.

Gainsight limits each tenant to ``requests_per_minute`` (100) and
``requests_per_day`` (50,000) in *fixed* windows whose alignment we cannot
observe. A fixed window aligned with ours would be easy to honour, but the
server's boundaries are unknown, so this budget uses **sliding windows**: at
most ``per_minute`` sends in any interval of ``60 s + margin`` and at most
``per_day`` in any ``24 h + margin``. Every fixed 60-second window, whatever
its alignment, is such an interval, so the budget can never exceed the
server's count; the margin absorbs network latency (a request sent just after
our window slid may arrive at the server a little later than it left).

The day window is kept in one-minute buckets (memory stays bounded whatever
``per_day`` is); a bucket counts until ``24 h + margin`` after the *end* of its
minute, which only ever errs on the safe side.

Waiters are served by priority: every :attr:`Priority.HIGH` waiter (incremental
polls, delete-log reads, delete confirmations) goes before any
:attr:`Priority.LOW` waiter (full sweeps), first come first served within a
priority, so a long sweep can never starve incremental polls. On top of that a
share of each minute (``high_reserve``, 10% by default, at least one request) is
kept for HIGH callers: a full sweep that runs flat out leaves room, so an
incremental poll arriving mid-sweep is served at once instead of waiting for the
window to slide. Time and sleeping come from the injected :class:`~watcher.clock.Clock`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum

from watcher.clock import Clock

MINUTE_S = 60.0
DAY_S = 86_400.0
_BUCKET_S = 60.0


class Priority(IntEnum):
    """Lower value is served first."""

    HIGH = 0
    LOW = 1


@dataclass
class BudgetStats:
    """Counters for metrics; monotonically increasing."""

    calls: int = 0
    calls_high: int = 0
    calls_low: int = 0
    rate_limited: int = 0
    waits: int = 0
    wait_seconds: float = 0.0


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    event: asyncio.Event = field(compare=False, default_factory=asyncio.Event)


class Budget:
    """Sliding-window limiter with HIGH-before-LOW waiters.

    ``await budget.acquire(priority)`` returns once one request may be sent and
    counts it as sent. ``note_rate_limited(seconds)`` records a 429 and holds
    every waiter for ``seconds`` (the server's window is shared by all sources).
    """

    def __init__(
        self,
        per_minute: int,
        per_day: int,
        clock: Clock,
        *,
        margin_s: float = 1.0,
        high_reserve: float = 0.1,
    ) -> None:
        if per_minute <= 0 or per_day <= 0:
            raise ValueError("per_minute and per_day must be positive")
        self.per_minute = per_minute
        # Slots per minute LOW callers may not take; none when the budget is 1/min.
        self.reserved_high = (
            max(1, int(per_minute * high_reserve)) if per_minute > 1 and high_reserve > 0 else 0
        )
        self.per_day = per_day
        self._clock = clock
        self._minute_window = MINUTE_S + margin_s
        self._day_window = DAY_S + margin_s + _BUCKET_S
        self._minute: deque[float] = deque()
        self._day: deque[list[float]] = deque()  # [bucket_start, count]
        self._day_total = 0
        self._paused_until = float("-inf")
        self._queue: list[_Waiter] = []
        self._seq = itertools.count()
        self.stats = BudgetStats()

    # -- pure-ish accounting ------------------------------------------------

    def _expire(self, now: float) -> None:
        while self._minute and self._minute[0] + self._minute_window <= now:
            self._minute.popleft()
        while self._day and self._day[0][0] + self._day_window <= now:
            self._day_total -= int(self._day.popleft()[1])

    def delay(self, priority: Priority = Priority.HIGH) -> float:
        """Seconds until one more request of ``priority`` may be sent (0.0: now)."""
        now = self._clock.monotonic()
        self._expire(now)
        wait = max(0.0, self._paused_until - now)
        limit = self.per_minute - (self.reserved_high if priority is Priority.LOW else 0)
        if len(self._minute) >= limit:
            # the slot frees when enough of the oldest sends leave the window
            oldest = self._minute[len(self._minute) - limit]
            wait = max(wait, oldest + self._minute_window - now)
        if self._day_total >= self.per_day:
            excess = self._day_total - self.per_day + 1
            for start, count in self._day:
                excess -= int(count)
                if excess <= 0:
                    wait = max(wait, start + self._day_window - now)
                    break
        return wait

    def _record(self, now: float, priority: Priority) -> None:
        self._minute.append(now)
        bucket = (now // _BUCKET_S) * _BUCKET_S
        if self._day and self._day[-1][0] == bucket:
            self._day[-1][1] += 1
        else:
            self._day.append([bucket, 1])
        self._day_total += 1
        self.stats.calls += 1
        if priority is Priority.HIGH:
            self.stats.calls_high += 1
        else:
            self.stats.calls_low += 1

    @property
    def used_last_minute(self) -> int:
        self._expire(self._clock.monotonic())
        return len(self._minute)

    @property
    def used_last_day(self) -> int:
        self._expire(self._clock.monotonic())
        return self._day_total

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def note_rate_limited(self, seconds: float) -> None:
        """A 429 was seen: count it and hold every caller for ``seconds``."""
        self.stats.rate_limited += 1
        until = self._clock.monotonic() + max(0.0, seconds)
        self._paused_until = max(self._paused_until, until)

    # -- waiting ------------------------------------------------------------

    def _wake_head(self) -> None:
        if self._queue:
            self._queue[0].event.set()

    async def acquire(self, priority: Priority = Priority.LOW) -> float:
        """Wait for a free slot, take it, and return the seconds spent waiting."""
        start = self._clock.monotonic()
        waiter = _Waiter(int(priority), next(self._seq))
        heapq.heappush(self._queue, waiter)
        waited = False
        try:
            while True:
                if self._queue[0] is waiter:
                    wait = self.delay(priority)
                    if wait <= 0:
                        heapq.heappop(self._queue)
                        self._record(self._clock.monotonic(), priority)
                        self._wake_head()
                        break
                    waited = True
                    await self._clock.sleep(wait)
                else:
                    waited = True
                    waiter.event.clear()
                    await waiter.event.wait()
        except BaseException:
            if waiter in self._queue:
                self._queue.remove(waiter)
                heapq.heapify(self._queue)
            self._wake_head()
            raise
        spent = max(0.0, self._clock.monotonic() - start)
        if waited:
            self.stats.waits += 1
            self.stats.wait_seconds += spent
        return spent
