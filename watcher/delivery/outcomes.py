"""Where a delivery attempt's outcome is recorded: the outbox row, the one log line,
the dispatcher's stats and the ``/metrics`` counter, together.

``delivered`` (``delivery.succeeded``), ``failed`` (``delivery.failed``: retried
``retry_delays[n]`` later +-10% jitter, or after ``Retry-After``; a 410 pauses the
sink and keeps the row pending), ``dead`` (``delivery.dead``: the last attempt, or
a permanent error) and ``suppressed`` (``delivery.suppressed``: over a throttle).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from watcher.clock import Clock
from watcher.dates import format_utc
from watcher.delivery.base import MAX_RETRY_AFTER, Sink
from watcher.errors import DispatchError, PermanentDispatchError, SinkGoneError
from watcher.logging import Logger, redact
from watcher.store.outbox import DeliveryRow, Outbox

JITTER = 0.1


@dataclass
class DispatchStats:
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    suppressed: int = 0

    def add(self, other: DispatchStats) -> None:
        self.delivered += other.delivered
        self.failed += other.failed
        self.dead += other.dead
        self.suppressed += other.suppressed


class DeliveryCounter(Protocol):
    """Counts delivery outcomes where they happen (``/metrics``:
    :meth:`watcher.daemon.metrics.Metrics.delivery`)."""

    def delivery(self, sink: str, outcome: str) -> None:
        """One delivery of ``sink`` ended ``delivered``, ``failed``, ``dead`` or
        ``suppressed``."""


class _NoCounter:
    def delivery(self, sink: str, outcome: str) -> None:
        del sink, outcome


class Outcomes:
    """Records each outcome in the outbox, logs it once, and counts it."""

    def __init__(
        self,
        outbox: Outbox,
        sinks: Mapping[str, Sink],
        *,
        clock: Clock,
        delays: Callable[[str], tuple[float, ...]],
        stats: DispatchStats,
        log: Logger,
        counter: DeliveryCounter | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox = outbox
        self.sinks = sinks
        self.clock = clock
        self.delays = delays
        self.stats = stats
        self.log = log
        self.counter: DeliveryCounter = counter or _NoCounter()
        self.rng = rng or random.Random()  # noqa: S311  # jitter, not cryptography

    def delivered(self, rows: list[DeliveryRow], *, status: int | None, elapsed_ms: float) -> None:
        self.outbox.mark_delivered([r.id for r in rows], self.clock.now())
        for row in rows:
            self.stats.delivered += 1
            self.counter.delivery(row.sink, "delivered")
            self.log.info(
                "delivery.succeeded",
                **self._fields(row, attempt=row.attempts + 1),
                status=status,
                duration_ms=elapsed_ms,
                batch=len(rows),
            )

    def suppressed(self, row: DeliveryRow, *, reason: str) -> None:
        self.outbox.mark_suppressed(row.id, reason=reason)
        self.stats.suppressed += 1
        self.counter.delivery(row.sink, "suppressed")
        self.log.info(
            "delivery.suppressed", **self._fields(row, attempt=row.attempts), reason=reason
        )

    def _fields(self, row: DeliveryRow, *, attempt: int) -> dict[str, str | int | None]:
        sink = self.sinks.get(row.sink)
        return {
            "delivery_id": row.id,
            "event_id": row.event_id,
            "event_sequence": row.event_sequence,
            "rule": row.rule,
            "sink": row.sink,
            "sink_type": sink.type if sink is not None else None,
            "order_key": row.order_key,
            "attempt": attempt,
        }

    def failed(
        self, name: str, rows: list[DeliveryRow], error: DispatchError, *, elapsed_ms: float
    ) -> None:
        """A failed attempt: retried later, dead after the last one, the sink paused on 410."""
        message = redact(str(error))
        if isinstance(error, SinkGoneError):
            reason = f"receiver answered 410 Gone at {format_utc(self.clock.now())}"
            if self.outbox.pause("sink", name, reason=reason, now=self.clock.now()):
                self.log.warning("sink.paused", sink=name, reason=reason, error=message)
            for row in rows:
                self.stats.failed += 1
                self.counter.delivery(row.sink, "failed")
                self.log.warning(
                    "delivery.failed",
                    **self._fields(row, attempt=row.attempts),
                    error=message,
                    duration_ms=elapsed_ms,
                    sink_paused=True,
                )
            return
        delays = self.delays(name)
        now = self.clock.now().timestamp()
        for row in rows:
            attempt = row.attempts + 1
            fields = self._fields(row, attempt=attempt)
            if isinstance(error, PermanentDispatchError) or attempt >= len(delays):
                self.outbox.mark_dead(row.id, error=message)
                self.stats.dead += 1
                self.counter.delivery(row.sink, "dead")
                self.log.error(
                    "delivery.dead",
                    **fields,
                    max_attempts=len(delays),
                    error=message,
                    permanent=isinstance(error, PermanentDispatchError),
                    duration_ms=elapsed_ms,
                )
                continue
            retry_after = getattr(error, "retry_after", None)
            if retry_after is not None:
                delay = min(float(retry_after), MAX_RETRY_AFTER)
            else:
                delay = delays[attempt] * (1 + self.rng.uniform(-JITTER, JITTER))
            self.outbox.mark_retry(row.id, next_attempt_at=now + delay, error=message)
            self.stats.failed += 1
            self.counter.delivery(row.sink, "failed")
            self.log.warning(
                "delivery.failed",
                **fields,
                max_attempts=len(delays),
                error=message,
                retry_in_s=round(delay, 3),
                duration_ms=elapsed_ms,
            )
