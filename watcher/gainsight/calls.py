"""One Gainsight call: budget, retries, error translation (the client's lower half).

Every HTTP attempt first takes a slot from the shared :class:`~watcher.gainsight.budget.Budget`.
Retries are bounded and jittered: 429 waits ``Retry-After`` when given, else
until the next boundary of Gainsight's fixed 60 s window (the real API documents
no ``Retry-After``), for up to ``max_retry_after_s`` in all rather than a fixed
count of tries; 5xx, timeouts and connection errors back off exponentially; a
malformed or truncated reply is retried a couple of times. 401/403 fail at once.

Nothing from httpx, json or dict access escapes: every failure is a
:class:`~watcher.errors.SourceError` subclass raised ``from`` the original.

The access key travels only in the ``Accesskey`` header; it is registered for
log redaction and never put in a URL, a log line or an exception.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import httpx

from watcher.clock import Clock
from watcher.dates import parse_retry_after
from watcher.errors import (
    ApiError,
    AuthError,
    MalformedResponseError,
    RateLimitedError,
    TransientError,
)
from watcher.gainsight.budget import Budget, Priority
from watcher.gainsight.envelope import (
    Reply,
    decode_json,
    describe_error,
    digest_without_id,
    envelope_request_id,
    error_desc,
    header_request_id,
    is_envelope,
    parse_json,
    read_records,
    reply_digest,
)
from watcher.gainsight.query import (
    iso_filter_value,
)
from watcher.gainsight.rows import read_page
from watcher.httpread import MAX_REPLY_BYTES, ReplyTooLargeError, bounded_post
from watcher.logging import get_logger, register_secret

KEY_SETTING = "gainsight.access_key_env / gainsight.access_key_file"
WINDOW_S = 60.0  # Gainsight's documented fixed rate-limit window
MIN_429_WAIT_S = 1.0  # the least a 429 waits, whatever its Retry-After says
AUTH_CODES = frozenset({"GS_APIG_2401", "GSOBJ_1024"})

_log = get_logger("watcher.gainsight")


@dataclass
class _Tries:
    calls: int = 0
    transient: int = 0
    rate_limited: int = 0
    malformed: int = 0
    waited: float = 0.0  # seconds of 429 waits so far
    last: str = ""  # why the last attempt is retried, for on_retry


@dataclass
class ClientStats:
    """Counters for metrics."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def count_error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_filter_value(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _valid_header_value(value: str) -> bool:
    return bool(value) and all(32 <= ord(ch) < 127 for ch in value)


class ApiCaller:
    """One Gainsight call at a time: a budget slot, the request, bounded retries, the
    reply read and its errors translated. :class:`~watcher.gainsight.client.GainsightClient`
    adds the reads (paging, look-ups by key, delete feeds) on top."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        access_key: str,
        budget: Budget,
        clock: Clock,
        max_retries: int = 5,
        timeout_s: float = 30.0,
        rng: random.Random | None = None,
        malformed_retries: int = 2,
        max_retry_after_s: float = 900.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        rate_limit_base_s: float = 2.0,
        rate_limit_cap_s: float = 60.0,
    ) -> None:
        if not _valid_header_value(access_key):
            raise AuthError(
                "the Gainsight access key is empty or has characters an HTTP header cannot "
                f"carry (spaces inside, newlines, non-ASCII); check the {KEY_SETTING} setting"
            )
        register_secret(access_key)
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._headers = {
            "Accesskey": access_key,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self.budget = budget
        self._clock = clock
        self.max_retries = max(0, max_retries)
        self.malformed_retries = max(0, min(malformed_retries, self.max_retries))
        self._timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        self.timeout_s = timeout_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.max_retry_after_s = max_retry_after_s
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._rate_backoff = (rate_limit_base_s, rate_limit_cap_s)
        self.stats = ClientStats()
        # Told why and when each retry happens (``watcher poll`` shows it on a terminal).
        self.on_retry: Callable[[str], None] | None = None
        self._caps: dict[str, int] = {}  # route -> rows per page the server caps pages at
        self._honoured: set[tuple[str, int]] = set()  # (route, size) answered in full
        #: (route, size) -> the most rows one page of that size was seen to carry: a cap,
        #: if the server has one, is no smaller, so a page with fewer rows is the end.
        self._served: dict[tuple[str, int], int] = {}

    def metrics(self) -> dict[str, float]:
        """Counters for ``/metrics`` (monotonic except the two ``used_*`` gauges)."""
        b = self.budget.stats
        out: dict[str, float] = {
            "requests": self.stats.requests,
            "retries": self.stats.retries,
            "rate_limited": self.stats.rate_limited,
            "budget_calls_high": b.calls_high,
            "budget_calls_low": b.calls_low,
            "budget_waits": b.waits,
            "budget_wait_seconds": b.wait_seconds,
            "budget_used_last_minute": self.budget.used_last_minute,
            "budget_used_last_day": self.budget.used_last_day,
        }
        for kind, count in sorted(self.stats.errors.items()):
            out[f"errors_{kind}"] = count
        return out

    # -- one call ------------------------------------------------------------

    def _delay(self, attempt: int, base_cap: tuple[float, float]) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random."""
        base, cap = base_cap
        full = min(cap, base * 2.0 ** min(attempt, 30))
        return full / 2 + self._rng.uniform(0, full / 2)

    async def _post(
        self, path: str, body: Mapping[str, Any] | None
    ) -> tuple[httpx.Response, float]:
        """Send once (POST with ``body``, GET when it is ``None``); translate every
        httpx failure. Returns (response, seconds)."""
        url = self.base_url + path
        started = time.perf_counter()
        try:
            response = await bounded_post(  # capped body, one deadline (watcher.httpread)
                self._http,
                url,
                method="GET" if body is None else "POST",
                content=(
                    None
                    if body is None
                    else json.dumps(body, default=_json_default, separators=(",", ":"))
                ),
                headers=self._headers,
                timeout=self._timeout,
                deadline_s=self.timeout_s,
                max_bytes=MAX_REPLY_BYTES,
                accept_encoding="gzip, deflate",
            )
        except ReplyTooLargeError as exc:
            raise MalformedResponseError(
                f"{path}: reply larger than {MAX_REPLY_BYTES // 2**20} MiB; not read"
            ) from exc
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"{path}: no answer from {self.base_url} within {self.timeout_s:g}s "
                f"({type(exc).__name__})"
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise ApiError(
                f"{path}: unsupported URL scheme in {self.base_url}; check gainsight.base_url"
            ) from exc
        except httpx.DecodingError as exc:
            raise MalformedResponseError(
                f"{path}: reply body could not be decoded ({type(exc).__name__})"
            ) from exc
        except (httpx.TransportError, OSError) as exc:
            raise TransientError(
                f"{path}: cannot reach {self.base_url} ({type(exc).__name__}); check "
                "gainsight.base_url, DNS and the network"
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise ApiError(f"{path}: request failed ({type(exc).__name__})") from exc
        return response, time.perf_counter() - started

    async def _call(
        self,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        priority: Priority,
        columns: tuple[str, str] | None = None,
    ) -> tuple[Reply, int]:
        """POST with budget and retries; return the rows and the number of requests made.

        ``columns``: the key and modified-date fields of the rows asked for; the usual
        reply is then read as :class:`~watcher.gainsight.rows.RawRows` (each record's
        bytes, its key and date; records parsed on demand)."""
        tries = _Tries()
        while True:
            await self.budget.acquire(priority)
            tries.calls += 1
            self.stats.requests += 1
            outcome = await self._attempt(path, body, tries, columns)
            if isinstance(outcome, Reply):
                return outcome, tries.calls
            self.stats.retries += 1
            if self.on_retry is not None:
                self.on_retry(self._retry_note(tries, outcome))
            if outcome > 0:
                await self._clock.sleep(outcome)

    def _retry_note(self, tries: _Tries, wait: float) -> str:
        """``retrying (2/6) in 3s: HTTP 500`` - what a terminal shows while it waits."""
        if tries.rate_limited and tries.last == "rate limited (429)":
            return f"rate limited (429): waiting {wait:.0f}s for Gainsight's next window..."
        used = max(tries.transient, tries.malformed)
        return f"retrying ({used + 1}/{self.max_retries + 1}) in {wait:.0f}s: {tries.last}..."

    async def _attempt(
        self,
        path: str,
        body: Mapping[str, Any] | None,
        tries: _Tries,
        columns: tuple[str, str] | None = None,
    ) -> Reply | float:
        """One request: the reply, or the seconds to wait before retrying; else raise."""
        try:
            response, seconds = await self._post(path, body)
        except TransientError as exc:
            self.stats.count_error("transport")
            cause = exc.__cause__ or exc
            _log.debug(
                "gainsight.call",
                method="GET" if body is None else "POST",
                path=path,
                error=type(cause).__name__,
            )
            if tries.transient >= self.max_retries:
                raise TransientError(f"{exc} (gave up after {tries.calls} attempts)") from cause
            tries.transient += 1
            tries.last = f"{type(cause).__name__}, no answer"
            return self._delay(tries.transient - 1, self._backoff)
        except MalformedResponseError as exc:
            self.stats.count_error("malformed")
            return self._retry_malformed(tries, exc)
        status = response.status_code
        hdr_id = header_request_id(response.headers)
        _log.debug(
            "gainsight.call",
            method="GET" if body is None else "POST",
            path=path,
            status=status,
            duration_ms=round(seconds * 1000, 1),
            request_id=hdr_id,
            attempt=tries.calls,
        )
        if status in (401, 403):
            self.stats.count_error("auth")
            rid = hdr_id or self._body_request_id(response)
            raise AuthError(
                f"Gainsight rejected the access key (HTTP {status} on {path}, request id "
                f"{rid or 'none'}); check the {KEY_SETTING} setting and that the key was "
                "not regenerated",
                error_code=self._body_code(response),
                request_id=rid,
                status=status,
            )
        if status == 429:
            return self._on_rate_limited(path, response, hdr_id, tries)
        if status >= 500 or status == 408:
            self.stats.count_error("server")
            if tries.transient >= self.max_retries:
                code = self._body_code(response)
                rid = hdr_id or self._body_request_id(response)
                desc = error_desc(self._body(response))
                raise TransientError(
                    f"{path}: Gainsight answered HTTP {status} ({describe_error(code, desc)}) "
                    f"{tries.calls} times; request id {rid or 'none'}; it is failing on "
                    "Gainsight's side: the next scheduled poll tries again",
                    error_code=code,
                    request_id=rid,
                    status=status,
                )
            tries.transient += 1
            tries.last = f"HTTP {status}"
            return self._delay(tries.transient - 1, self._backoff)
        try:
            return self._interpret(path, response, hdr_id, columns)
        except MalformedResponseError as exc:
            self.stats.count_error("malformed")
            if status >= 300:
                raise
            return self._retry_malformed(tries, exc)
        except ApiError as exc:
            if exc.error_code in AUTH_CODES:  # e.g. GSOBJ_1024 arrives as HTTP 400
                self.stats.count_error("auth")
                raise AuthError(
                    f"Gainsight rejected the request's authorization ({exc.error_code} on "
                    f"{path}, request id {exc.request_id or 'none'}); check the {KEY_SETTING} "
                    "setting",
                    error_code=exc.error_code,
                    request_id=exc.request_id,
                    status=exc.status,
                ) from exc
            self.stats.count_error("api")
            raise

    def _retry_malformed(self, tries: _Tries, exc: MalformedResponseError) -> float:
        if tries.malformed >= self.malformed_retries:
            raise exc
        tries.malformed += 1
        tries.last = "malformed reply"
        return self._delay(tries.malformed - 1, self._backoff)

    def _on_rate_limited(
        self, path: str, response: httpx.Response, hdr_id: str | None, tries: _Tries
    ) -> float:
        self.stats.rate_limited += 1
        self.stats.count_error("rate_limited")
        after = parse_retry_after(response.headers.get("retry-after"), self._clock.now())
        # A Retry-After of 0 or in the past still waits a second: a server that keeps
        # saying "now" must not be hammered (or, on a fake clock, spun on for ever).
        delay = (
            max(after, MIN_429_WAIT_S)
            if after is not None
            else self._until_window(tries.rate_limited)
        )
        if tries.waited + delay > self.max_retry_after_s:
            self.budget.note_rate_limited(min(delay, self.max_retry_after_s))
            raise RateLimitedError(
                f"{path}: Gainsight kept answering 429 (rate limited) for "
                f"{tries.waited:.0f}s over {tries.calls} attempts; the tenant's API budget "
                "(per minute or per day) is spent: lower gainsight.requests_per_minute or "
                "poll less often",
                request_id=hdr_id,
                status=429,
            )
        tries.rate_limited += 1
        tries.waited += delay
        tries.last = "rate limited (429)"
        self.budget.note_rate_limited(delay)  # the next acquire() waits it out, for everyone
        return 0.0

    def _until_window(self, attempt: int) -> float:
        """Seconds to the next boundary of the fixed 60 s window, plus a little jitter
        (more on later attempts, in case the server's window is not aligned to ours)."""
        stamp = self._clock.now().timestamp()
        rest = WINDOW_S - stamp % WINDOW_S
        return max(1.0, rest) + self._rng.uniform(0.5, 1.5 + min(attempt, 10))

    def _body(self, response: httpx.Response) -> Any:
        try:
            return parse_json(response.content)
        except (ValueError, RecursionError):
            return None

    def _body_code(self, response: httpx.Response) -> str | None:
        body = self._body(response)
        code = body.get("errorCode") if isinstance(body, dict) else None
        return code[:64] if isinstance(code, str) and code else None

    def _body_request_id(self, response: httpx.Response) -> str | None:
        return envelope_request_id(self._body(response), None)

    def _interpret(
        self,
        path: str,
        response: httpx.Response,
        hdr_id: str | None,
        columns: tuple[str, str] | None = None,
    ) -> Reply:
        status = response.status_code
        if columns is not None and 200 <= status < 300:
            fast = read_page(response.content, *columns)
            if fast is not None:  # the usual page: rows as received, parsed on demand
                rows, rid = fast
                request_id = rid[:100] if isinstance(rid, str) and rid else hdr_id
                return Reply(rows, request_id, digest=digest_without_id(response.content, rid))
        if 300 <= status < 400:
            raise ApiError(
                f"{path}: Gainsight redirected (HTTP {status}); check gainsight.base_url "
                "(use the API host, with https://)",
                request_id=hdr_id,
                status=status,
            )
        try:
            body = decode_json(response.content, what=path, request_id=hdr_id)
        except MalformedResponseError as exc:
            if status >= 400:
                raise ApiError(
                    f"{path}: HTTP {status} and a reply that is not Gainsight's envelope; "
                    "check gainsight.base_url and the source's path",
                    request_id=hdr_id,
                    status=status,
                ) from exc
            raise
        if status >= 400 and not is_envelope(body):
            raise ApiError(
                f"{path}: HTTP {status} without Gainsight's envelope; check "
                "gainsight.base_url and the source's path",
                request_id=hdr_id,
                status=status,
            )
        reply = read_records(body, what=path, status=status, header_id=hdr_id)
        if status >= 400 and reply.no_rows_form != "result-false":
            raise ApiError(
                f"{path}: HTTP {status} with result=true; request id {reply.request_id}",
                request_id=reply.request_id,
                status=status,
            )
        return replace(reply, digest=reply_digest(response.content, body))

    # -- reads ---------------------------------------------------------------
