"""Real local HTTP receivers on loopback, for tests, benchmarks and ``make run``.

- :class:`WebhookReceiver` records every request (headers, body, receipt time) and
  answers 200, or what was scripted (``script``/``respond``); ``echo`` prints a line
  per delivery (the demo).
- :class:`SlackReceiver` behaves like Slack incoming webhooks at
  ``/services/<name>``: ``ok`` for a valid message; at most one message per second
  per URL (else 429 with ``Retry-After``); ``invalid_blocks`` for more than 50
  blocks or a text over 3000 characters; errors such as ``channel_not_found`` for
  URLs registered with :meth:`SlackReceiver.fail`.

Both run a uvicorn server on the current event loop (``async with receiver:``), can
be stopped and started again on the same port (a receiver that is down, then back),
and take an injected clock for their time stamps and rate limits.
"""

from __future__ import annotations

import abc
import asyncio
import json
import socket
import sys
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Self, TextIO

from watcher.clock import Clock, SystemClock
from watcher.httpserve import EmbeddedServer, bind, server_config

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # the receiver clock's monotonic time
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


_HANDED_OUT: set[int] = set()


def _reserve_port() -> socket.socket:
    """A listening socket on a loopback port no other receiver of this process was given
    (the kernel may hand a just-closed port out again)."""
    for _ in range(100):
        sock = bind("127.0.0.1", 0)
        port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return sock
        sock.close()
    raise OSError("no free loopback port found in 100 tries")


class _Receiver(abc.ABC):
    def __init__(
        self, *, port: int | None = None, clock: Clock | None = None, echo: TextIO | None = None
    ) -> None:
        # The port is held from here until the first start, so nothing else can take it
        # meanwhile; a receiver stopped and started again binds the same port anew.
        self._reserved: socket.socket | None = None
        if port is None:
            self._reserved = _reserve_port()
            port = int(self._reserved.getsockname()[1])
        self.port = port
        self.clock: Clock = clock or SystemClock()
        self.echo = echo
        self.received: list[Received] = []
        self._server: EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        self._arrived = asyncio.Condition()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        config = server_config(
            self._app,
            interface="asgi3",
            proxy_headers=False,
            http="h11",
            timeout_graceful_shutdown=1,
        )
        server = EmbeddedServer(config)
        sock, self._reserved = self._reserved or bind("127.0.0.1", self.port), None
        try:
            self._task = await server.start(sock)
        except BaseException:
            sock.close()
            raise
        self._server, self._sock = server, sock

    async def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start`."""
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.stop()
        await task
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        """Wait (real time, bounded) until ``count`` requests arrived."""
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.received) >= count), within
            )
        return list(self.received)

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        reply = self.reply(scope["method"], path, headers, body)
        self.received.append(Received(path, headers, body, self.clock.monotonic(), reply.status))
        if self.echo is not None and 200 <= reply.status < 300:
            self.show(path, headers, body)
        raw_headers = [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        raw_headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": reply.body})
        async with self._arrived:
            self._arrived.notify_all()

    @abc.abstractmethod
    def reply(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        """The answer to one request (status, headers, body)."""

    def show(self, path: str, headers: dict[str, str], body: bytes) -> None:
        print(f"received {path}: {body[:200]!r}", file=self.echo or sys.stdout, flush=True)

    @property
    def ok(self) -> list[Received]:
        """Requests that were answered 2xx."""
        return [r for r in self.received if 200 <= r.status < 300]


class WebhookReceiver(_Receiver):
    """Records webhook POSTs; answers 200 unless scripted otherwise."""

    def __init__(
        self, *, port: int | None = None, clock: Clock | None = None, echo: TextIO | None = None
    ) -> None:
        super().__init__(port=port, clock=clock, echo=echo)
        self.script: deque[Reply] = deque()
        self.default = Reply(200)

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    def respond(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer every following request with ``status`` (until changed)."""
        self.default = Reply(status, dict(headers or {}))

    def then(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, one each, then the default."""
        self.script.extend(replies)

    def reply(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if method != "POST":
            return Reply(405)
        return self.script.popleft() if self.script else self.default

    def show(self, path: str, headers: dict[str, str], body: bytes) -> None:
        try:
            event = json.loads(body)
            data = event.get("data") or {}
            line = (
                f"webhook <- {event.get('type')} {data.get('source')}:{data.get('key')} "
                f"changes={sorted((data.get('changes') or {}).keys())} "
                f"id={headers.get('webhook-id')}"
            )
        except (ValueError, AttributeError):
            line = f"webhook <- {len(body)} bytes"
        print(line, file=self.echo or sys.stdout, flush=True)


class SlackReceiver(_Receiver):
    """A Slack-like incoming-webhook endpoint with Slack's limits and error bodies."""

    def __init__(
        self,
        *,
        port: int | None = None,
        clock: Clock | None = None,
        echo: TextIO | None = None,
        interval: float = 1.0,
    ) -> None:
        super().__init__(port=port, clock=clock, echo=echo)
        self.interval = interval
        self._last: dict[str, float] = {}
        self._errors: dict[str, tuple[int, str]] = {}

    def url(self, name: str = "T000/B000/XXXX") -> str:
        return f"{self.base_url}/services/{name}"

    def fail(self, name: str, status: int, error: str) -> str:
        """Make ``url(name)`` answer ``status`` with Slack error body ``error``; return it."""
        self._errors[f"/services/{name}"] = (status, error)
        return self.url(name)

    def messages(self, name: str | None = None) -> list[dict[str, Any]]:
        """Accepted messages (optionally for one URL), parsed."""
        path = None if name is None else f"/services/{name}"
        return [r.json() for r in self.ok if path is None or r.path == path]

    def reply(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        text = {"content-type": "text/plain"}
        if method != "POST" or not path.startswith("/services/"):
            return Reply(404, text, b"no_service")
        if path in self._errors:
            status, error = self._errors[path]
            return Reply(status, text, error.encode())
        now = self.clock.monotonic()
        last = self._last.get(path)
        if last is not None and now - last < self.interval - 1e-9:
            wait = max(1, int(self.interval - (now - last) + 0.999))
            return Reply(429, {**text, "retry-after": str(wait)}, b"rate_limited")
        try:
            payload = json.loads(body)
        except ValueError:
            return Reply(400, text, b"invalid_payload")
        if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
            return Reply(400, text, b"no_text")
        if (
            not _blocks_valid(payload.get("blocks", []))
            or len(str(payload.get("text", ""))) > 40000
        ):
            return Reply(400, text, b"invalid_blocks")
        self._last[path] = now
        return Reply(200, text, b"ok")

    def show(self, path: str, headers: dict[str, str], body: bytes) -> None:
        try:
            text = json.loads(body).get("text", "")
        except (ValueError, AttributeError):
            text = ""
        print(f"slack <- {text}", file=self.echo or sys.stdout, flush=True)


def _texts(value: Any) -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        if value.get("type") in ("mrkdwn", "plain_text") and isinstance(value.get("text"), str):
            out.append(value["text"])
        for v in value.values():
            if isinstance(v, dict | list):
                out.extend(_texts(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(_texts(v))
    return out


def _blocks_valid(blocks: Any) -> bool:
    if not isinstance(blocks, list) or len(blocks) > 50:
        return False
    if not all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks):
        return False
    return all(0 < len(t) <= 3000 for t in _texts(blocks))


async def _serve(kind: str, port: int, record: str | None, echo: bool) -> None:
    receiver: _Receiver
    if kind == "slack":
        receiver = SlackReceiver(port=port, echo=sys.stdout if echo else None)
    else:
        receiver = WebhookReceiver(port=port, echo=sys.stdout if echo else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal
    import time

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stamps: list[str] = []
    if record:
        original = receiver.reply

        def reply(method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
            stamps.append(f"{headers.get('webhook-id', '')} {time.time():.6f}")
            return original(method, path, headers, body)

        receiver.reply = reply  # type: ignore[method-assign]  # wrap to time-stamp arrivals
    async with receiver:
        print(f"{kind} receiver listening on {receiver.base_url}", flush=True)
        await stop.wait()
    if record:
        await asyncio.to_thread(_write_lines, record, stamps)


def _write_lines(path: str, lines: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m watcher.testing.receivers webhook|slack --port P [--echo] [--record F]``."""
    import argparse

    parser = argparse.ArgumentParser(description="a local webhook or Slack-like receiver")
    parser.add_argument("kind", choices=["webhook", "slack"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--echo", action="store_true", help="print one line per delivery")
    parser.add_argument("--record", help="on exit, write 'webhook-id epoch-seconds' lines here")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.kind, args.port, args.record, args.echo))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
