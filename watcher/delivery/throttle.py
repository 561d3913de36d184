"""Throttle decisions (pure): may a delivery be sent now, must it wait, or is it over
the limit?

A rule's ``throttle = { per, max, window }`` is judged before a delivery's first
attempt, in *event time*: the window is the ``window`` before the delivery's own event
``time`` (inclusive), so when deliveries happen (after a pause, an outage, a backlog)
never changes the outcome. Within the window, for the same rule and sink (and record,
``per = "key"``), other events count:

- *delivered*: ``max`` of them and the delivery is suppressed;
- *sent but not confirmed* (an attempt in flight, or failed and being retried): they
  hold their place without using it up; when they could push the delivery over the
  limit it waits for their outcome rather than being suppressed in their favour. A
  delivery that dies never counts.

A delivery an operator retried (``explicit``), and one attempted before, is not judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from watcher.dates import format_utc, parse_iso
from watcher.rules.models import Throttle
from watcher.store.outbox import DeliveryRow

Verdict = Literal["send", "suppressed", "wait"]


@dataclass(frozen=True)
class Window:
    """The event-time window ``(after, until]`` and scope one delivery is judged in."""

    after: str
    until: str
    order_key: str | None  # None: the whole rule


def window(throttle: Throttle, row: DeliveryRow, now: datetime) -> Window:
    until = parse_iso(row.event_time) or now
    return Window(
        after=format_utc(until - timedelta(seconds=throttle.window_seconds)),
        until=format_utc(until),
        order_key=row.order_key if throttle.per == "key" else None,
    )


def needs_judging(throttle: Throttle | None, row: DeliveryRow) -> bool:
    return throttle is not None and not row.explicit and row.attempts == 0


def judge(
    throttle: Throttle,
    row: DeliveryRow,
    span: Window,
    *,
    delivered: set[str],
    sent: Mapping[str, float],
    unconfirmed: Iterable[DeliveryRow],
    now: float,
) -> tuple[Verdict, float | None]:
    """The verdict for ``row``, and for ``wait`` when to look again (None: an attempt in
    flight in this process ends first and wakes the dispatcher).

    ``delivered``: ids of other events delivered in the window; ``sent``: other events
    sent and pending, with their next attempt (from the store); ``unconfirmed``: rows
    this dispatcher has started or is about to start.
    """
    if len(delivered) >= throttle.max:
        return "suppressed", None
    waiting = set(sent) - delivered
    for other in unconfirmed:
        seen = parse_iso(other.event_time)
        when = format_utc(seen) if seen is not None else span.until
        if (
            other.rule == row.rule
            and other.event_id != row.event_id
            and (span.order_key is None or other.order_key == span.order_key)
            and span.after < when <= span.until
        ):
            waiting.add(other.event_id)
    if len(delivered) + len(waiting) < throttle.max:
        return "send", None
    retries = [sent[e] for e in waiting if e in sent]
    if not retries:
        return "wait", None
    return "wait", max(min(retries), now + 1.0)


def reason(rule: str, throttle: Throttle) -> str:
    return (
        f"throttled: rule {rule!r} allows {throttle.max} per {throttle.per} per "
        f"{throttle.window} of event time"
    )
