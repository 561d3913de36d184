"""What the dispatcher hands a sink, and what every sink provides."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from watcher.rules.models import Rule


@dataclass(frozen=True)
class Item:
    """One delivery: its id, the event (parsed and as stored) and the rule that routed it."""

    delivery_id: str
    rule_name: str
    body: str
    event: dict[str, Any]
    rule: Rule | None = None

    @classmethod
    def from_body(
        cls, delivery_id: str, rule_name: str, body: str, rule: Rule | None = None
    ) -> Item:
        return cls(delivery_id, rule_name, body, json.loads(body), rule)

    @property
    def event_id(self) -> str:
        return str(self.event.get("id", ""))


@dataclass(frozen=True)
class SendResult:
    """What a successful attempt reports for the log line."""

    status: int | None = None
    messages: int = 1


@dataclass(frozen=True)
class Preview:
    """Exactly what a sink would send for some items (``watcher rules test``)."""

    sink: str
    type: str
    payloads: list[dict[str, Any]]


class Sink(Protocol):
    """A delivery target. ``send`` raises :class:`~watcher.errors.DispatchError` subclasses."""

    name: str
    type: str
    #: How many due deliveries one ``send`` may fold together (Slack digests); 1 = one each.
    max_batch: int

    async def send(self, items: Sequence[Item]) -> SendResult: ...

    def preview(self, items: Sequence[Item]) -> Preview: ...

    async def aclose(self) -> None: ...


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
