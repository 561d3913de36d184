"""What the dispatcher hands a sink, and what every sink provides."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from watcher.dates import parse_retry_after
from watcher.errors import RetryableDispatchError
from watcher.httpread import bounded_post
from watcher.rules.models import Rule

__all__ = [
    "MAX_RETRY_AFTER",
    "Item",
    "Preview",
    "SendResult",
    "Sink",
    "parse_retry_after",
    "post",
]

#: The longest wait a receiver's ``Retry-After`` can impose (a day); longer is capped.
MAX_RETRY_AFTER = 24 * 3600.0
#: How much of a receiver's reply is read (only its status and a short error matter).
MAX_REPLY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Item:
    """One delivery: its id, the event (parsed and as stored) and the rule that routed it.
    ``message_id``: the id receivers see (``webhook-id``) when it is not the event id."""

    delivery_id: str
    rule_name: str
    body: str
    event: dict[str, Any]
    rule: Rule | None = None
    message_id: str | None = None

    @classmethod
    def from_body(
        cls,
        delivery_id: str,
        rule_name: str,
        body: str,
        rule: Rule | None = None,
        message_id: str | None = None,
    ) -> Item:
        return cls(delivery_id, rule_name, body, json.loads(body), rule, message_id)

    @property
    def event_id(self) -> str:
        return str(self.event.get("id", ""))

    @property
    def webhook_id(self) -> str:
        """The event id (a redelivery or replay repeats it, as Standard Webhooks intends),
        or the new id a ``watcher replay --new-ids`` gave this delivery."""
        return self.message_id or self.event_id


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


async def post(
    http: httpx.AsyncClient,
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    where: str,
) -> httpx.Response:
    """POST with a timeout; a timeout or transport failure becomes a
    :class:`~watcher.errors.RetryableDispatchError` that never carries the URL.

    ``timeout_s`` bounds the whole attempt (a reply trickling in cannot hold it longer);
    at most :data:`MAX_REPLY_BYTES` of the reply are read, uncompressed
    (``Accept-Encoding: identity``).
    """
    try:
        return await bounded_post(
            http,
            url,
            content=content,
            headers=headers,
            timeout=timeout_s,
            deadline_s=timeout_s,
            max_bytes=MAX_REPLY_BYTES,
            truncate=True,
        )
    except httpx.TimeoutException:
        raise RetryableDispatchError(
            f"{where}: no answer within {timeout_s:g}s; will retry"
        ) from None
    except httpx.TransportError as exc:
        raise RetryableDispatchError(
            f"{where}: cannot connect ({type(exc).__name__}); will retry"
        ) from None
