"""The ``[http]`` server: ``/healthz``, ``/readyz``, ``/metrics`` and the pull feed.

``GET /v1/events?after=SEQ&limit=N&wait=S&source=&type=`` with
``Authorization: Bearer <token>`` answers ``{"events": [...], "next_after": SEQ}``.
With ``wait`` it long-polls: it answers as soon as a matching event commits (the
runner calls :meth:`EventSignal.notify` after each poll; a one-second recheck also
sees commits made by other processes), or with an empty page after ``wait`` seconds
(at most :data:`MAX_WAIT_S`). The feed is off (404) when no token is configured.
At most :data:`MAX_LONG_POLLS` requests wait at once; more are answered 429.

The server itself (:class:`HttpServer`) caps its connections and times out slow
request headers; :mod:`watcher.daemon.http_guard` holds those limits and the
``Host`` / token guard the runner wraps the app in.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import socket
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from watcher import httpserve
from watcher.daemon.health import Readiness
from watcher.daemon.http_guard import HEADER_TIMEOUT_S, MAX_CONNECTIONS, limited_h11
from watcher.daemon.metrics import CONTENT_TYPE, Metrics
from watcher.daemon.status_routes import status_routes
from watcher.store.view import FeedPage, StoreView

__all__ = ["EventSignal", "HttpServer", "Readiness", "bind", "create_app"]

MAX_WAIT_S = 60.0
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
RECHECK_S = 1.0
#: Long-polling feed requests waiting at once; more are answered 429 (Retry-After).
MAX_LONG_POLLS = 32
#: The largest ``after`` SQLite can compare (a signed 64-bit integer).
MAX_SEQUENCE = 2**63 - 1


class EventSignal:
    """Wakes long-polling feed requests when new events commit."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seconds: float) -> bool:
        """True when notified within ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
            return True
        return False


def create_app(
    *,
    view: StoreView,
    metrics: Metrics,
    readiness: Callable[[], Readiness],
    token: str | None,
    signal: EventSignal | None = None,
    status: Callable[[], dict[str, Any]] | None = None,
    status_needs_token: bool = False,
) -> Starlette:
    """The ASGI app; everything it needs is passed in.

    ``status`` gives the status dict (``GET /v1/status``, and ``GET /`` as HTML); with
    ``status_needs_token`` (a listen address other than loopback) both take the feed
    token like the feed does.
    """
    new_events = signal or EventSignal()
    expected = token.encode() if token else None
    waiting = 0

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        state = await asyncio.to_thread(readiness)
        body = {"status": "ready" if state.ready else "not ready", "checks": state.checks}
        return JSONResponse(body, status_code=200 if state.ready else 503)

    async def metrics_endpoint(_: Request) -> Response:
        data = await asyncio.to_thread(metrics.render)
        return Response(data, media_type=CONTENT_TYPE)

    async def events(request: Request) -> Response:
        if expected is None:
            return _error(404, "the event feed is off; set http.feed_token_env or _file")
        if not _authorized(request, expected):
            return JSONResponse(
                {"error": "missing or wrong bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="watcher"'},
            )
        try:
            after, limit, wait = _params(request)
        except ValueError as exc:
            return _error(400, str(exc))
        source = request.query_params.get("source") or None
        type_ = request.query_params.get("type") or None
        nonlocal waiting
        if wait > 0 and waiting >= MAX_LONG_POLLS:
            return JSONResponse(
                {"error": f"too many waiting feed requests (at most {MAX_LONG_POLLS})"},
                status_code=429,
                headers={"Retry-After": "1"},
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        waiting += wait > 0
        try:
            while True:
                page: FeedPage = await asyncio.to_thread(view.feed, after, limit, source, type_)
                remaining = deadline - loop.time()
                if page.events or remaining <= 0:
                    break
                await new_events.wait(min(remaining, RECHECK_S))
        finally:
            waiting -= wait > 0
        return JSONResponse({"events": page.events, "next_after": page.next_after})

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        Route("/v1/events", events),
    ]
    if status is not None:
        routes += status_routes(
            status, needs_token=status_needs_token, expected=expected, authorized=_authorized
        )
    return Starlette(routes=routes)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _authorized(request: Request, expected: bytes) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        # Compare anyway so a missing header costs the same as a wrong one.
        hmac.compare_digest(b"", expected)
        return False
    return hmac.compare_digest(given.strip().encode(), expected)


def _params(request: Request) -> tuple[int, int, float]:
    q = request.query_params
    try:
        after = int(q.get("after", "0"))
        limit = int(q.get("limit", str(DEFAULT_LIMIT)))
        wait = float(q.get("wait", "0"))
    except ValueError:
        raise ValueError("after and limit must be integers, wait a number of seconds") from None
    if not 0 <= after <= MAX_SEQUENCE:
        raise ValueError("after must be 0 or a sequence number from next_after")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    if not math.isfinite(wait) or wait < 0:
        raise ValueError("wait must be 0 or more seconds")
    return after, limit, min(wait, MAX_WAIT_S)


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket up front so a busy port is a clear error."""
    return httpserve.bind(host, port, setting="http.listen")


class HttpServer:
    """Runs the app on an already bound socket until :meth:`stop`."""

    def __init__(
        self,
        app: ASGIApp,
        sock: socket.socket,
        *,
        max_connections: int = MAX_CONNECTIONS,
        header_timeout_s: float = HEADER_TIMEOUT_S,
    ) -> None:
        self.sock = sock
        config = httpserve.server_config(
            app,
            http=limited_h11(max_connections=max_connections, header_timeout_s=header_timeout_s),
            h11_max_incomplete_event_size=16 * 1024,  # request line and headers
        )
        self._server = httpserve.EmbeddedServer(config)

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    async def serve(self) -> None:
        await self._server.serve(sockets=[self.sock])

    def stop(self) -> None:
        self._server.stop()
