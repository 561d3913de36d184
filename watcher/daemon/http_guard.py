"""Guards for the ``[http]`` server: which ``Host`` it answers, who needs the token,
how many connections it holds and how long a request's headers may take.

:func:`guard` wraps the ASGI app:

- ``Host`` must name the listen address, a loopback name when listening on loopback,
  any IP literal when listening on every address, or one of ``allowed_hosts``; else
  400 (a DNS-rebinding page in a browser cannot reach the server by a name of its own).
- on a listen address other than loopback, every path but ``/healthz`` needs the
  bearer token unless the client itself is on loopback.

uvicorn has neither a connection cap nor a header deadline (``limit_concurrency``
answers 503 only once a request's headers have arrived; half-sent requests still
hold their sockets). :func:`limited_h11` builds uvicorn's h11 protocol with both:

- at most ``max_connections`` open connections. A new connection at the cap evicts
  the oldest one still waiting for its request headers, so a flood of half-sent
  requests cannot lock out ``/healthz``; when every connection is busy with a
  request, the new one is closed at once.
- a request's headers must arrive within ``header_timeout_s`` of the connection
  opening (or of the previous response on a kept-alive connection), else the
  connection is closed.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from collections.abc import Iterable
from typing import Any

import h11
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from watcher.config import is_loopback_host

MAX_CONNECTIONS = 64
HEADER_TIMEOUT_S = 10.0
#: Paths answered to anyone who may connect (nothing in them is worth protecting).
OPEN_PATHS = frozenset({"/healthz"})


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def host_name(header: str) -> str:
    """The name in a ``Host`` header: without the port, brackets or a trailing dot."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    name, sep, port = value.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        value = name
    return value.rstrip(".")


def host_allowed(header: str | None, listen_host: str, allowed_hosts: Iterable[str]) -> bool:
    """Whether to answer a request that names ``header`` as its Host (pure)."""
    if header is None:  # HTTP/1.0 without Host: no browser sends that
        return True
    name = host_name(header)
    if name in {h.lower().rstrip(".") for h in allowed_hosts}:
        return True
    listen = listen_host.lower()
    if name == listen:
        return True
    ip = _ip(name)
    wildcard = listen in ("0.0.0.0", "::", "")  # noqa: S104 - comparing, not binding
    if wildcard and ip is not None:
        return True  # an address cannot be re-bound by DNS
    if is_loopback_host(listen) or wildcard:
        return name == "localhost" or (ip is not None and ip.is_loopback)
    return ip is not None and _ip(listen) == ip


def guard(
    app: ASGIApp, *, listen_host: str, allowed_hosts: Iterable[str], token: str | None
) -> ASGIApp:
    """``app`` behind the Host check and, off loopback, the token for all but /healthz."""
    allowed = tuple(allowed_hosts)
    needs_token = not is_loopback_host(listen_host)
    expected = token.encode() if token else None

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host")
        if not host_allowed(host.decode("latin-1") if host else None, listen_host, allowed):
            await _reply(
                send, 400, "unknown Host; add it to http.allowed_hosts if it is really this server"
            )
            return
        client = scope.get("client")
        local = client is not None and is_loopback_host(client[0])
        if needs_token and not local and scope.get("path") not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            scheme, _, value = given.partition(b" ")
            ok = expected is not None and scheme.lower() == b"bearer"
            if not hmac.compare_digest(value.strip() if ok else b"", expected or b"-"):
                await _reply(send, 401, "missing or wrong bearer token", bearer=True)
                return
        await app(scope, receive, send)

    return guarded


async def _reply(send: Send, status: int, message: str, *, bearer: bool = False) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if bearer:
        headers.append((b"www-authenticate", b'Bearer realm="watcher"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def limited_h11(
    *, max_connections: int = MAX_CONNECTIONS, header_timeout_s: float = HEADER_TIMEOUT_S
) -> type[asyncio.Protocol]:
    """An h11 protocol class for ``uvicorn.Config(http=...)``; one per server (the
    registry of waiting connections is shared by the connections of that server)."""
    #: Connections waiting for request headers, oldest first (dict keeps insert order).
    waiting: dict[LimitedH11, None] = {}
    open_: set[LimitedH11] = set()

    class LimitedH11(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _refused = False

        def connection_made(self, transport: Any) -> None:
            if len(open_) >= max_connections:
                if not waiting:  # every connection is busy with a request
                    self._refused = True
                    transport.abort()
                    return
                oldest = next(iter(waiting))
                oldest.close_slow()
            open_.add(self)
            super().connection_made(transport)
            self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:  # never handed to uvicorn
                return
            open_.discard(self)
            self._headers_arrived()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._headers_arrived()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._await_headers()

        def _await_headers(self) -> None:
            self._headers_arrived()
            waiting[self] = None
            self._deadline = self.loop.call_later(header_timeout_s, self.close_slow)

        def _headers_arrived(self) -> None:
            waiting.pop(self, None)
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def close_slow(self) -> None:
            """No request headers in time (or evicted at the cap): close, answer nothing."""
            self._headers_arrived()
            open_.discard(self)  # its place is free now; connection_lost follows
            self.transport.abort()

    return LimitedH11
