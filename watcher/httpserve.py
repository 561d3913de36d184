"""An embedded uvicorn server: bind first (port 0 works, a busy port is a clear error),
then serve on the caller's event loop or a thread, and stop at once when asked.

One helper for the three servers the package runs: the daemon's ``[http]`` server
(:mod:`watcher.daemon.http`), the simulated tenant (:mod:`watcher.sim.server`) and
the test receivers (:mod:`watcher.testing.receivers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from watcher.errors import ConfigError

#: How long a stopping server lets open requests finish.
GRACEFUL_S = 2.0


def bind(host: str, port: int, *, setting: str | None = None) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: any free port).

    A port that cannot be bound raises :class:`OSError`, or :class:`ConfigError`
    naming ``setting`` when the address came from the config (``http.listen``).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Reply headers and body leave in separate writes; without NODELAY (inherited by
    # accepted sockets) Nagle plus delayed ACK add ~40 ms to every keep-alive request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if setting is None:
            raise
        raise ConfigError(
            f"{setting} {host}:{port}: cannot bind ({exc.strerror}); "
            "pick a free port or stop what is using it"
        ) from None
    sock.setblocking(False)
    return sock


def server_config(app: Any, **settings: Any) -> uvicorn.Config:
    """uvicorn settings for an embedded server: no logging config of its own, no access
    log, no lifespan or websockets; ``settings`` override (e.g. the ``http`` protocol)."""
    options: dict[str, Any] = {
        "log_config": None,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "off",
        "ws": "none",
        "timeout_graceful_shutdown": GRACEFUL_S,
        **settings,
    }
    return uvicorn.Config(app, **options)


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers (the embedding program owns SIGTERM and
    Ctrl-C), whose :meth:`stop` takes effect at once instead of at the next tick."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()  # set once the socket accepts connections

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        """Like uvicorn's loop, but :meth:`stop` wakes it at once instead of at the next
        0.1 s tick (tests start and stop many servers)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not await self.on_tick(0):  # tick 0 also refreshes the Date header
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    def stop(self) -> None:
        """Ask the server to shut down; safe from any thread or a signal handler."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(wake.set)

    async def start(self, sock: socket.socket) -> asyncio.Task[None]:
        """Serve ``sock`` on the running loop; return once it accepts connections (the
        task ends after :meth:`stop`). A server that cannot start raises its error."""
        task = asyncio.ensure_future(self.serve(sockets=[sock]))
        while not self.started:
            if task.done():
                task.result()
                raise RuntimeError(f"the server on {sock.getsockname()} did not start")
            await asyncio.sleep(0.005)
        return task
