"""Webhook sink: CloudEvents structured JSON, signed per Standard Webhooks.

2xx is success; 429 and 503 honour ``Retry-After``; other 5xx, 408, 425 and
transport errors are retried; 410 raises :class:`~watcher.errors.SinkGoneError`
(the dispatcher pauses the sink); any other 4xx cannot be fixed by retrying.
Errors never carry the URL (it may hold a token) or the secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

from watcher.clock import Clock
from watcher.dates import parse_retry_after
from watcher.delivery.base import Item, Preview, SendResult, post
from watcher.delivery.signing import sign
from watcher.errors import PermanentDispatchError, RetryableDispatchError, SinkGoneError

CONTENT_TYPE = "application/cloudevents+json"
RETRYABLE_4XX = frozenset({408, 425, 429})
#: Headers the sink sets itself; a configured one of the same name would be sent twice.
OWN_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)


class WebhookSink:
    type = "webhook"
    max_batch = 1

    def __init__(
        self,
        name: str,
        *,
        url: str,
        key: bytes | None,
        http: httpx.AsyncClient,
        clock: Clock,
        timeout_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._url = url
        self._key = key
        self._http = http
        self._clock = clock
        self._timeout = timeout_s
        self._headers = dict(headers or {})

    def request(self, item: Item, *, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
        """Headers and body for ``item`` (signed when a secret is configured)."""
        body = item.body.encode("utf-8")
        ts = int(self._clock.now().timestamp()) if timestamp is None else timestamp
        headers = {
            **self._headers,
            "content-type": CONTENT_TYPE,
            "webhook-id": item.webhook_id,
            "webhook-timestamp": str(ts),
        }
        if self._key is not None:
            headers["webhook-signature"] = sign(self._key, item.webhook_id, ts, body)
        return headers, body

    def preview(self, items: Sequence[Item]) -> Preview:
        payloads = []
        for item in items:
            headers, _ = self.request(item)
            if "webhook-signature" in headers:
                headers["webhook-signature"] = "v1,<HMAC-SHA256 computed when sent>"
            payloads.append({"method": "POST", "headers": headers, "body": item.event})
        return Preview(self.name, self.type, payloads)

    async def send(self, items: Sequence[Item]) -> SendResult:
        (item,) = items
        headers, body = self.request(item)
        where = f"webhook sink {self.name!r}"
        response = await post(
            self._http,
            self._url,
            content=body,
            headers=headers,
            timeout_s=self._timeout,
            where=where,
        )
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(status=status)
        if status == 410:
            raise SinkGoneError(
                f"{where}: receiver answered 410 Gone; the sink is paused, "
                f"run 'watcher resume --sink {self.name}' once the receiver is back"
            )
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
        if status >= 500 or status in RETRYABLE_4XX:
            raise RetryableDispatchError(
                f"{where}: receiver answered HTTP {status}; will retry",
                retry_after=retry_after if status in (429, 503) else None,
            )
        raise PermanentDispatchError(
            f"{where}: receiver answered HTTP {status}; retrying cannot help, "
            "fix the receiver then run 'watcher deliveries retry --dead'"
        )

    async def aclose(self) -> None:
        return None
