"""The dispatcher: pending deliveries -> sinks, with retries, ordering and pauses.

- Concurrent across sinks; per sink at most ``concurrency`` attempts in flight.
- Ordering: for one sink and one ``order_key`` at most one attempt is in flight and
  a delivery is attempted only when no earlier pending delivery of that key waits
  (a failed earlier delivery holds later ones back, across retries, until it is
  delivered or dead). Deliveries of a paused rule are set aside and do not hold
  others back; they keep their place and go out when the rule is resumed.
- Retries: after attempt *n* fails, the next is ``retry_delays[n]`` later, +-10%
  jitter, or after ``Retry-After`` when the receiver gave one. After the last
  attempt the delivery is ``dead`` (kept; ``watcher deliveries retry``).
  :class:`~watcher.errors.PermanentDispatchError` dead-letters at once;
  :class:`~watcher.errors.SinkGoneError` (HTTP 410) pauses the sink, persisted, and
  keeps the delivery pending.
- Throttle (rule ``throttle``, :mod:`watcher.delivery.throttle`) is judged before a
  delivery's first attempt, in event time, counting only deliveries that were sent: a
  delivery over the limit becomes ``suppressed`` (kept, never sent); one that could be
  pushed over it by deliveries not yet confirmed waits for their outcome. A pause, an
  outage or a failing receiver never turns into suppression; an operator's retry is
  never throttled.
- Digest (rule ``digest``): a rule's pending deliveries wait until ``window`` after
  the first one was queued, then go out together (Slack: one message; other sinks:
  each event, in order). Digest deliveries do not take part in per-key ordering and
  are not throttled.
- At-least-once: a row stays ``pending`` until the sink confirmed it, so a crash
  mid-attempt means one more attempt, carrying the same event id.

One log line per delivery attempt: ``delivery.succeeded``, ``delivery.failed``,
``delivery.dead`` (and ``delivery.suppressed``, ``sink.paused``), with stable fields
and never a URL or secret; :mod:`watcher.delivery.outcomes` records each outcome
(outbox row, log line, stats, ``/metrics`` counter) in one place.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlite_utils import Database

from watcher.clock import Clock
from watcher.config import DEFAULT_RETRY_SCHEDULE, SinkConfig
from watcher.dates import parse_iso
from watcher.delivery import throttle as throttling
from watcher.delivery.base import Item, Sink
from watcher.delivery.outcomes import DeliveryCounter, DispatchStats, Outcomes
from watcher.durations import parse_duration
from watcher.errors import (
    DispatchError,
    RetryableDispatchError,
    StoreError,
)
from watcher.logging import Logger, get_logger, redact
from watcher.rules.models import Digest, Rule
from watcher.store.outbox import DeliveryRow, Outbox

__all__ = ["DeliveryCounter", "DispatchStats", "Dispatcher"]

DUE_SLACK = 0.001  # a row due within 1 ms counts as due (clocks keep microseconds only)
_DEFAULT_DELAYS = tuple(parse_duration(v) for v in DEFAULT_RETRY_SCHEDULE)


@dataclass
class _SinkState:
    busy_keys: set[str] = field(default_factory=set)
    tasks: dict[asyncio.Task[None], list[DeliveryRow]] = field(default_factory=dict)
    inflight: dict[str, DeliveryRow] = field(default_factory=dict)
    # planned groups not started yet (one plan serves many completions: fewer queries)
    queue: deque[list[DeliveryRow]] = field(default_factory=deque)
    wake: float | None = None
    failed_store: bool = False


class Dispatcher:
    def __init__(
        self,
        db: Database,
        sinks: Mapping[str, Sink],
        *,
        clock: Clock,
        rules: Sequence[Rule] = (),
        sink_configs: Mapping[str, SinkConfig] | None = None,
        rng: random.Random | None = None,
        window: int = 200,
        logger: Logger | None = None,
        counter: DeliveryCounter | None = None,
    ) -> None:
        self.outbox = Outbox(db)
        self.sinks = dict(sinks)
        self.clock = clock
        self.rules = {r.name: r for r in rules}
        self.configs = dict(sink_configs or {})
        self.window = window
        self.log = logger or get_logger("watcher.delivery")
        self.stats = DispatchStats()
        self.outcomes = Outcomes(
            self.outbox,
            self.sinks,
            clock=clock,
            delays=self._delays,
            stats=self.stats,
            log=self.log,
            counter=counter,
            rng=rng,
        )
        self._sink_wakes: dict[str, asyncio.Event] = {}
        self._stopping = False
        self._next_wake: dict[str, float] = {}

    # -- public ----------------------------------------------------------------------

    def wake(self) -> None:
        """New deliveries were queued (or a pause lifted): look again now."""
        for event in self._sink_wakes.values():
            event.set()

    async def run_until_idle(self, *, settle: bool = False) -> DispatchStats:
        """Deliver everything due now, then return.

        With ``settle=True`` keep going (sleeping on the injected clock between
        retries) until no delivery is pending any more: all delivered, dead,
        suppressed or held by a pause. Tests drive the dispatcher with this.
        """
        before = DispatchStats(**vars(self.stats))
        names = [n for n in self.outbox.pending_sinks() if n in self.sinks]
        await asyncio.gather(*(self._drain(n, settle=settle) for n in names))
        return DispatchStats(
            delivered=self.stats.delivered - before.delivered,
            failed=self.stats.failed - before.failed,
            dead=self.stats.dead - before.dead,
            suppressed=self.stats.suppressed - before.suppressed,
        )

    async def run(self, stop: asyncio.Event, *, poll_interval: float = 1.0) -> None:
        """The daemon loop: one independent loop per sink (a slow sink never delays
        another), each draining what is due, then waiting for :meth:`wake`, the next
        retry or ``poll_interval``. On ``stop`` no new attempt starts; in-flight ones
        finish (cancel the task to abandon them: they stay pending)."""
        self._stopping = False
        if not self.sinks:  # nothing to deliver to: just live until told to stop
            await stop.wait()
            return
        self._sink_wakes = {name: asyncio.Event() for name in self.sinks}

        async def watch_stop() -> None:
            await stop.wait()
            self._stopping = True
            self.wake()

        watcher = asyncio.ensure_future(watch_stop())
        try:
            await asyncio.gather(
                *(self._run_sink(name, stop, poll_interval) for name in self.sinks)
            )
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            self._sink_wakes = {}

    async def _run_sink(self, name: str, stop: asyncio.Event, poll_interval: float) -> None:
        woken = self._sink_wakes[name]
        while not stop.is_set():
            woken.clear()
            try:
                await self._drain(name, settle=False)
            except StoreError as exc:  # the store cannot be read (locked, damaged): next round
                self.log.error(  # noqa: TRY400  # the message says it all; no trace
                    "dispatcher.store_error", sink=name, error=redact(str(exc))
                )
            if stop.is_set():
                return
            due = self._next_wake.get(name)
            now = self.clock.now().timestamp()
            delay = poll_interval if due is None else min(poll_interval, max(0.0, due - now))
            waiter = asyncio.ensure_future(woken.wait())
            sleeper = asyncio.ensure_future(self.clock.sleep(delay))
            try:
                await asyncio.wait([waiter, sleeper], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                sleeper.cancel()
                await asyncio.gather(waiter, sleeper, return_exceptions=True)

    async def aclose(self) -> None:
        for sink in self.sinks.values():
            await sink.aclose()

    # -- internals -------------------------------------------------------------------

    def _delays(self, sink: str) -> tuple[float, ...]:
        cfg = self.configs.get(sink)
        return cfg.retry_delays if cfg is not None else _DEFAULT_DELAYS

    def _concurrency(self, sink: str) -> int:
        cfg = self.configs.get(sink)
        return cfg.concurrency if cfg is not None else 4

    async def _drain(self, name: str, *, settle: bool) -> None:
        sink = self.sinks[name]
        state = _SinkState()
        self._next_wake.pop(name, None)
        try:
            while True:
                pauses = self.outbox.pauses()
                wake: float | None = None
                if name not in pauses.sinks and not self._stopping and not state.failed_store:
                    if not state.queue:
                        groups, state.wake = self._select(name, sink, state, pauses.rules)
                        state.queue.extend(groups)
                    capacity = self._concurrency(name)
                    while state.queue and len(state.tasks) < capacity:
                        group = [r for r in state.queue.popleft() if r.rule not in pauses.rules]
                        if group:
                            self._start(name, sink, state, group)
                    wake = self.clock.now().timestamp() if state.queue else state.wake
                if not state.tasks:
                    if state.failed_store:
                        return
                    if wake is not None:
                        self._next_wake[name] = wake
                    if not settle or wake is None:
                        return
                    await self.clock.sleep(max(0.0, wake - self.clock.now().timestamp()))
                    continue
                done, _ = await asyncio.wait(state.tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    rows = state.tasks.pop(task)
                    for row in rows:
                        state.busy_keys.discard(row.order_key)
                        state.inflight.pop(row.id, None)
                    try:
                        task.result()
                    except StoreError as exc:
                        # the outcome could not be recorded: the rows stay pending (one
                        # more attempt later, same ids); stop this drain, retry next round
                        self.log.error(  # noqa: TRY400  # the message says it all; no trace
                            "dispatcher.store_error", sink=name, error=redact(str(exc))
                        )
                        state.queue.clear()
                        state.failed_store = True
        finally:  # cancelled (shutdown, crash test): in-flight attempts stop, rows stay pending
            for task in state.tasks:
                task.cancel()
            if state.tasks:
                await asyncio.gather(*state.tasks, return_exceptions=True)

    def _start(self, name: str, sink: Sink, state: _SinkState, rows: list[DeliveryRow]) -> None:
        for row in rows:
            state.busy_keys.add(row.order_key)
            state.inflight[row.id] = row
        task = asyncio.ensure_future(self._attempt(name, sink, rows))
        state.tasks[task] = rows

    def _select(
        self, name: str, sink: Sink, state: _SinkState, paused_rules: frozenset[str]
    ) -> tuple[list[list[DeliveryRow]], float | None]:
        """Groups of rows to attempt now (respecting order, throttle, digest), and when
        the earliest row held back by time becomes due."""
        # A small window is cheap; a larger one only when the small one is all held back.
        limit = min(self.window, max(32, 4 * self._concurrency(name) * sink.max_batch))
        while True:
            rows = self.outbox.pending_window(name, exclude_rules=paused_rules, limit=limit)
            groups, wake = self._plan(sink, state, rows)
            if groups or len(rows) < limit or limit >= self.window:
                return groups, wake
            limit = self.window

    def _plan(
        self, sink: Sink, state: _SinkState, rows: list[DeliveryRow]
    ) -> tuple[list[list[DeliveryRow]], float | None]:
        now_dt = self.clock.now()
        now = now_dt.timestamp() + DUE_SLACK
        blocked = set(state.busy_keys)
        singles: list[DeliveryRow] = []
        digests: dict[str, list[DeliveryRow]] = {}
        chosen: list[DeliveryRow] = []
        wake: float | None = None
        batch = sink.max_batch > 1
        for row in rows:
            rule = self.rules.get(row.rule)
            if rule is not None and rule.digest is not None:
                if row.order_key not in state.busy_keys:
                    digests.setdefault(row.rule, []).append(row)
                continue
            if row.order_key in blocked:
                continue
            if row.next_attempt_at > now:
                blocked.add(row.order_key)
                wake = row.next_attempt_at if wake is None else min(wake, row.next_attempt_at)
                continue
            if rule is not None and rule.throttle is not None:
                verdict, until = self._throttle(rule, row, state, chosen)
                if verdict == "suppressed":
                    continue
                if verdict == "wait":  # for an outcome; later deliveries of the key wait too
                    blocked.add(row.order_key)
                    if until is not None:
                        wake = until if wake is None else min(wake, until)
                    continue
            chosen.append(row)
            if not batch:
                blocked.add(row.order_key)
            singles.append(row)
        groups: list[list[DeliveryRow]] = []
        for rule_name, members in digests.items():
            digest = self.rules[rule_name].digest
            if digest is None:  # only digest rules' rows are grouped above
                continue
            group, ready = self._digest_due(digest, members, now)
            if group:
                groups.append(group)
            elif ready is not None:
                wake = ready if wake is None else min(wake, ready)
        if batch and singles:
            # one batch per round: its keys are then busy, so a second batch started
            # alongside can never carry a later event of the same key
            groups.append(singles[: sink.max_batch])
            if len(singles) > sink.max_batch:
                wake = now
        else:
            groups.extend([row] for row in singles)
        return groups, wake

    def _throttle(
        self, rule: Rule, row: DeliveryRow, state: _SinkState, chosen: list[DeliveryRow]
    ) -> tuple[throttling.Verdict, float | None]:
        """:func:`watcher.delivery.throttle.judge` on the store's counts; a suppressed
        delivery is marked so and logged."""
        throttle = rule.throttle
        if throttle is None or not throttling.needs_judging(throttle, row):
            return "send", None
        span = throttling.window(throttle, row, self.clock.now())
        delivered, sent = self.outbox.throttle_usage(
            rule=rule.name,
            sink=row.sink,
            after=span.after,
            until=span.until,
            exclude_event=row.event_id,
            order_key=span.order_key,
            limit=throttle.max,
        )
        verdict, wake = throttling.judge(
            throttle,
            row,
            span,
            delivered=delivered,
            sent=sent,
            unconfirmed=[*state.inflight.values(), *chosen],
            now=self.clock.now().timestamp(),
        )
        if verdict == "suppressed":
            reason = throttling.reason(rule.name, throttle)
            self.outcomes.suppressed(row, reason=reason)
        return verdict, wake

    def _digest_due(
        self, digest: Digest, rows: list[DeliveryRow], now: float
    ) -> tuple[list[DeliveryRow], float | None]:
        starts = [parse_iso(r.created_at) for r in rows]
        first = min((s.timestamp() for s in starts if s is not None), default=now)
        closes = first + digest.window_seconds
        ready = max(closes, min(r.next_attempt_at for r in rows))
        if ready > now:
            late = [r.id for r in rows if r.next_attempt_at < ready]
            if late:
                self.outbox.defer(late, ready)
            return [], ready
        return [r for r in rows if r.next_attempt_at <= now], None

    def _items(self, rows: Sequence[DeliveryRow]) -> list[Item]:
        bodies = self.outbox.bodies(r.event_sequence for r in rows)
        return [
            Item.from_body(
                r.id,
                r.rule,
                bodies.get(r.event_sequence, "{}"),
                self.rules.get(r.rule),
                r.message_id,
            )
            for r in rows
        ]

    async def _attempt(self, name: str, sink: Sink, rows: list[DeliveryRow]) -> None:
        if sink.max_batch > 1:
            await self._send(name, sink, rows)
            return
        for row in rows:  # a digest group for a one-at-a-time sink: in order, stop at a failure
            if not await self._send(name, sink, [row]):
                return

    async def _send(self, name: str, sink: Sink, rows: list[DeliveryRow]) -> bool:
        started = self.clock.monotonic()
        error: DispatchError
        try:
            result = await sink.send(self._items(rows))
        except DispatchError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001  # the one boundary per delivery attempt
            error = RetryableDispatchError(
                f"sink {name!r}: unexpected {type(exc).__name__}: {redact(str(exc))[:200]}"
            )
        else:
            elapsed = round((self.clock.monotonic() - started) * 1000, 1)
            self.outcomes.delivered(rows, status=result.status, elapsed_ms=elapsed)
            return True
        elapsed = round((self.clock.monotonic() - started) * 1000, 1)
        self.outcomes.failed(name, rows, error, elapsed_ms=elapsed)
        return False
