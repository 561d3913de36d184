"""The [http] server against hostile clients (issue 12): half-sent requests, floods of
connections, odd feed parameters, long-poll floods, foreign Host headers, exposure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon.test_http import AUTH, TOKEN, client_for
from watcher.clock import FakeClock
from watcher.config import parse_config
from watcher.daemon.http import (
    MAX_LONG_POLLS,
    EventSignal,
    HttpServer,
    Readiness,
    bind,
    create_app,
)
from watcher.daemon.http_guard import guard, host_allowed
from watcher.daemon.metrics import Metrics
from watcher.errors import ConfigError
from watcher.store import Store
from watcher.store.view import StoreView


def app_for(tmp_path: Path, signal: EventSignal | None = None) -> Any:
    Store.open(tmp_path / "watcher.db", clock=FakeClock()).close()
    return create_app(
        view=StoreView(tmp_path / "watcher.db"),
        metrics=Metrics(),
        readiness=lambda: Readiness(True, {"store": "ok"}),
        token=TOKEN,
        signal=signal,
    )


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[HttpServer]:
    """A real server on loopback with a small cap and a short header deadline."""
    app = guard(app_for(tmp_path), listen_host="127.0.0.1", allowed_hosts=(), token=TOKEN)
    srv = HttpServer(app, bind("127.0.0.1", 0), max_connections=20, header_timeout_s=0.5)
    task = asyncio.create_task(srv.serve())
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.port}") as client:
        for _ in range(500):
            try:
                await client.get("/healthz")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.01)
    yield srv
    srv.stop()
    await asyncio.wait_for(task, 10)


async def half_sent(port: int, n: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    conns = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        await writer.drain()
        conns.append((reader, writer))
    return conns


async def closed(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(), within)
    except (TimeoutError, ConnectionResetError):
        return False
    return data == b""


async def test_half_sent_requests_cannot_lock_out_healthz(server: HttpServer) -> None:
    """150 connections stuck in their headers: /healthz still answers at once (the
    oldest waiting connections are evicted at the cap), and the rest are closed
    when their header deadline passes."""
    conns = await half_sent(server.port, 150)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            response = await asyncio.wait_for(client.get("/healthz"), 5)
            assert response.status_code == 200
        results = await asyncio.gather(*(closed(r, 5) for r, _ in conns))
        assert all(results)
    finally:
        for _, writer in conns:
            writer.close()


async def test_a_connection_sending_no_headers_is_closed_after_the_deadline(
    server: HttpServer,
) -> None:
    ((reader, writer),) = await half_sent(server.port, 1)
    try:
        started = asyncio.get_running_loop().time()
        assert await closed(reader, 5)
        assert asyncio.get_running_loop().time() - started < 3
    finally:
        writer.close()


async def test_keep_alive_requests_still_work_under_the_header_deadline(
    server: HttpServer,
) -> None:
    """A kept-alive connection serves several quick requests in a row."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        for _ in range(5):
            assert (await client.get("/healthz")).status_code == 200
            await asyncio.sleep(0.2)  # under the deadline between requests


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("wait=nan", "wait must be"),
        ("wait=inf", "wait must be"),
        ("wait=-1", "wait must be"),
        (f"after={2**70}", "after must be"),
        (f"after={2**63}", "after must be"),
        ("after=-1", "after must be"),
        ("limit=0", "limit must be"),
    ],
)
async def test_odd_feed_parameters_answer_400(tmp_path: Path, query: str, message: str) -> None:
    async with client_for(app_for(tmp_path)) as client:
        response = await client.get(f"/v1/events?{query}", headers=AUTH)
    assert response.status_code == 400
    assert message in response.json()["error"]


async def test_the_largest_sequence_is_a_valid_cursor(tmp_path: Path) -> None:
    async with client_for(app_for(tmp_path)) as client:
        response = await client.get(f"/v1/events?after={2**63 - 1}", headers=AUTH)
    assert response.json() == {"events": [], "next_after": 2**63 - 1}


async def test_concurrent_long_polls_are_bounded(tmp_path: Path) -> None:
    """Past MAX_LONG_POLLS waiting requests, another long-poll is answered 429 at once;
    a plain read still answers."""
    signal = EventSignal()
    async with client_for(app_for(tmp_path, signal)) as client:
        waiting = [
            asyncio.create_task(client.get("/v1/events?wait=30", headers=AUTH))
            for _ in range(MAX_LONG_POLLS)
        ]
        for _ in range(200):
            await asyncio.sleep(0.01)
        extra = await asyncio.wait_for(client.get("/v1/events?wait=30", headers=AUTH), 5)
        assert extra.status_code == 429
        assert extra.headers["retry-after"] == "1"
        plain = await asyncio.wait_for(client.get("/v1/events", headers=AUTH), 5)
        assert plain.status_code == 200
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)


@pytest.mark.parametrize(
    ("host", "listen", "allowed", "ok"),
    [
        ("127.0.0.1:8790", "127.0.0.1", (), True),
        ("localhost:8790", "127.0.0.1", (), True),
        ("[::1]:8790", "127.0.0.1", (), True),
        ("evil.example:8790", "127.0.0.1", (), False),
        ("evil.example", "127.0.0.1", (), False),
        ("watcher.internal:8790", "0.0.0.0", ("watcher.internal",), True),
        ("WATCHER.internal.", "0.0.0.0", ("watcher.internal",), True),
        ("10.1.2.3:8790", "0.0.0.0", (), True),
        ("evil.example", "0.0.0.0", (), False),
        ("10.1.2.3", "10.1.2.3", (), True),
        ("10.1.2.4", "10.1.2.3", (), False),
        ("localhost", "10.1.2.3", (), False),
        (None, "127.0.0.1", (), True),
    ],
)
def test_host_header_is_checked_against_listen_and_allowed_hosts(
    host: str | None, listen: str, allowed: tuple[str, ...], ok: bool
) -> None:
    assert host_allowed(host, listen, allowed) is ok


async def test_a_rebound_dns_name_is_refused(tmp_path: Path) -> None:
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1."""
    app = guard(app_for(tmp_path), listen_host="127.0.0.1", allowed_hosts=(), token=TOKEN)
    async with client_for(app) as client:
        for path in ("/metrics", "/readyz", "/v1/events", "/healthz"):
            response = await client.get(path, headers={"Host": "evil.example:8790", **AUTH})
            assert response.status_code == 400, path
        ok = await client.get("/metrics", headers={"Host": "127.0.0.1:8790"})
        assert ok.status_code == 200


async def test_off_loopback_everything_but_healthz_needs_the_token(tmp_path: Path) -> None:
    app = guard(app_for(tmp_path), listen_host="0.0.0.0", allowed_hosts=(), token=TOKEN)
    transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5") as client:
        assert (await client.get("/healthz")).status_code == 200
        for path in ("/metrics", "/readyz", "/v1/events"):
            denied = await client.get(path)
            assert denied.status_code == 401, path
            wrong = await client.get(path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401, path
            assert (await client.get(path, headers=AUTH)).status_code == 200, path
    local = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=local, base_url="http://127.0.0.1") as client:
        assert (await client.get("/metrics")).status_code == 200


def http_config(listen: str, **extra: Any) -> dict[str, Any]:
    return {
        "gainsight": {"base_url": "https://acme.gainsightcloud.com", "access_key_env": "K"},
        "http": {"listen": listen, **extra},
    }


@pytest.mark.parametrize("listen", ["0.0.0.0:8790", "[::]:8790", "10.0.0.5:8790"])
def test_a_non_loopback_listen_without_a_token_is_a_config_error(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"http: listen .* reachable from other hosts"):
        parse_config(http_config(listen))
    parse_config(http_config(listen, feed_token_env="T"))
    parse_config(http_config("127.0.0.1:8790"))
    parse_config(http_config("localhost:8790"))


CHECKED = """
[gainsight]
base_url = "https://acme.gainsightcloud.com"
access_key_env = "WATCHER_TEST_KEY"

[http]
listen = "{listen}"
{token}

[rules]
paths = []
"""


@pytest.mark.parametrize(
    ("listen", "token", "value", "code", "expected"),
    [
        ("0.0.0.0:8790", "", "", 2, "reachable from other hosts: set feed_token_env"),
        ("0.0.0.0:8790", 'feed_token_env = "FEED"', "abc", 2, "too short (at least 16"),
        ("127.0.0.1:8790", 'feed_token_env = "FEED"', "abc", 2, "too short (at least 16"),
        ("127.0.0.1:8790", 'feed_token_file = "feed"', "abc", 2, "too short (at least 16"),
        ("0.0.0.0:8790", 'feed_token_env = "FEED"', "x" * 16, 0, "ok:"),
        ("127.0.0.1:8790", "", "", 0, "ok:"),
    ],
)
def test_check_refuses_exposed_listen_without_a_token_and_short_tokens(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    listen: str,
    token: str,
    value: str,
    code: int,
    expected: str,
) -> None:
    from watcher.cli import main

    monkeypatch.setenv("WATCHER_TEST_KEY", "k" * 20)
    monkeypatch.setenv("FEED", value)
    (tmp_path / "feed").write_text(value)
    path = tmp_path / "watcher.toml"
    path.write_text(CHECKED.format(listen=listen, token=token))
    assert main(["--config", str(path), "check"]) == code
    out, err = capsys.readouterr()
    assert expected in out + err
    if value:
        assert value not in err
