"""The one embedded-server helper the daemon, the simulated tenant and the receivers share."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from watcher.errors import ConfigError
from watcher.httpserve import EmbeddedServer, bind, server_config


async def _hello(_: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


def test_a_busy_port_is_an_os_error_or_a_config_error_naming_the_setting() -> None:
    with bind("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            bind("127.0.0.1", port)
        with pytest.raises(ConfigError, match=rf"http.listen 127.0.0.1:{port}: cannot bind"):
            bind("127.0.0.1", port, setting="http.listen")


async def test_serves_on_the_bound_socket_until_stopped() -> None:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = EmbeddedServer(server_config(Starlette(routes=[Route("/", _hello)])))
    task = await server.start(sock)
    assert server.ready.is_set()
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"http://127.0.0.1:{port}/")
        assert reply.text == "hello"
        server.stop()
        await task
        sock.close()
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")
