"""Slack incoming-webhook sink: Block Kit, 1 message/s per URL, Slack's error bodies.

A burst of due deliveries (up to ``max_batch``) is folded into one digest message.
Slack answers errors as a short text body (``invalid_blocks``, ``channel_not_found``
...); those retrying cannot fix are dead-lettered with the code and a hint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from watcher.clock import Clock
from watcher.dates import parse_retry_after
from watcher.delivery.base import MAX_RETRY_AFTER, Item, Preview, SendResult, post
from watcher.delivery.render import slack_messages
from watcher.errors import PermanentDispatchError, RetryableDispatchError

# Slack's documented incoming-webhook errors retrying cannot fix, with what to do.
PERMANENT_ERRORS = {
    "invalid_payload": "the message is not valid JSON Block Kit; report this as a bug",
    "invalid_blocks": "Slack rejected the blocks; report this as a bug with the delivery id",
    "invalid_blocks_format": "Slack rejected the blocks; report this as a bug",
    "no_text": "the message had no text; report this as a bug",
    "too_many_attachments": "the message was too large; report this as a bug",
    "channel_not_found": "the channel no longer exists; create a new incoming webhook",
    "channel_is_archived": "the channel is archived; unarchive it or use another webhook",
    "no_service": "the webhook was disabled or removed; create a new incoming webhook",
    "no_service_id": "the webhook URL is incomplete; copy it again from Slack",
    "no_team": "the Slack workspace was not found; copy the webhook URL again",
    "team_disabled": "the Slack workspace is disabled",
    "invalid_token": "the webhook URL's token is invalid; create a new incoming webhook",
    "action_prohibited": "a Slack admin restricted posting to this channel",
    "posting_to_general_channel_denied": "only admins may post to this channel",
    "user_not_found": "the webhook's user is gone; create a new incoming webhook",
}


class SlackRateLimiter:
    """At most one message per ``interval`` seconds per webhook URL (shared by sinks).

    One request per URL at a time; the next may start only ``interval`` after the
    previous one *completed*, so arrivals at Slack are at least ``interval`` apart
    whatever the network delay.
    """

    def __init__(self, clock: Clock, interval: float = 1.0) -> None:
        self._clock = clock
        self._interval = interval
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            now = self._clock.monotonic()
            ready = self._next.get(url, now)
            if ready > now:
                await self._clock.sleep(ready - now)
            try:
                yield
            finally:
                done = self._clock.monotonic() + self._interval
                self._next[url] = max(self._next.get(url, done), done)

    def hold(self, url: str, seconds: float) -> None:
        """Slack said wait (429): no message to ``url`` before ``seconds`` from now."""
        until = self._clock.monotonic() + seconds
        self._next[url] = max(self._next.get(url, 0.0), until)


class SlackSink:
    type = "slack"

    def __init__(
        self,
        name: str,
        *,
        url: str,
        http: httpx.AsyncClient,
        clock: Clock,
        limiter: SlackRateLimiter,
        timeout_s: float = 10.0,
        link_template: str | None = None,
        max_batch: int = 20,
    ) -> None:
        self.name = name
        self._url = url
        self._http = http
        self._clock = clock
        self._limiter = limiter
        self._timeout = timeout_s
        self._link = link_template
        self.max_batch = max_batch

    def messages(self, items: Sequence[Item]) -> list[dict[str, Any]]:
        return slack_messages([(i.event, i.rule_name) for i in items], self._link)

    def preview(self, items: Sequence[Item]) -> Preview:
        return Preview(self.name, self.type, self.messages(items))

    async def send(self, items: Sequence[Item]) -> SendResult:
        messages = self.messages(items)
        status = None
        for message in messages:
            status = await self._post(message)
        return SendResult(status=status, messages=len(messages))

    async def _post(self, message: dict[str, Any]) -> int:
        where = f"slack sink {self.name!r}"
        body = json.dumps(message, ensure_ascii=False).encode("utf-8")
        async with self._limiter.slot(self._url):
            response = await post(
                self._http,
                self._url,
                content=body,
                headers={"content-type": "application/json"},
                timeout_s=self._timeout,
                where=where,
            )
        status = response.status_code
        if status == 200:
            return status
        code = response.text.strip()[:80] or f"HTTP {status}"
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
            wait = 1.0 if retry_after is None else min(retry_after, MAX_RETRY_AFTER)
            self._limiter.hold(self._url, wait)
            raise RetryableDispatchError(
                f"{where}: Slack rate limit (429 {code}); will retry", retry_after=retry_after
            )
        if status >= 500:
            raise RetryableDispatchError(f"{where}: Slack answered {status} {code}; will retry")
        hint = PERMANENT_ERRORS.get(code, "retrying cannot help; check the webhook in Slack")
        raise PermanentDispatchError(f"{where}: Slack rejected the message: {code} ({hint})")

    async def aclose(self) -> None:
        return None
