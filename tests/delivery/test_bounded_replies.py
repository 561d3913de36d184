"""Hostile replies (issue 12): huge bodies, gzip bombs and trickling replies are cut off
by size and by one deadline per attempt, for sinks and the Gainsight client alike."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from tests.delivery.conftest import arr_change
from tests.gainsight.helpers import source
from watcher import __version__
from watcher.clock import FakeClock
from watcher.delivery.base import MAX_REPLY_BYTES, Item
from watcher.delivery.sinks.webhook import WebhookSink
from watcher.errors import MalformedResponseError, RetryableDispatchError
from watcher.gainsight import Budget, GainsightClient, Priority
from watcher.httpread import ReplyTooLargeError, bounded_post

Reply = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawServer:
    """A loopback HTTP/1.1 server whose reply is a coroutine writing raw bytes."""

    reply: Reply | None = None
    port: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    written: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
        self.requests.append(headers)
        await reader.readexactly(int(headers.get("content-length", "0")))
        assert self.reply is not None
        try:
            await self.reply(writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.written += len(data)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    server = RawServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    yield server
    listener.close()
    await listener.wait_closed()


def huge(server: RawServer, total: int) -> Reply:
    async def reply(writer: asyncio.StreamWriter) -> None:
        await server.send(writer, f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode())
        chunk = b"x" * 65536
        for _ in range(total // len(chunk)):
            await server.send(writer, chunk)

    return reply


def bomb(server: RawServer, expands_to: int, status: int = 200) -> Reply:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * 2**20
    body = b"".join(packer.compress(zeros) for _ in range(expands_to // len(zeros)))
    body += packer.flush()

    async def reply(writer: asyncio.StreamWriter) -> None:
        head = (
            f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
            f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        await server.send(writer, head.encode() + body)

    return reply


def trickle(server: RawServer) -> Reply:
    async def reply(writer: asyncio.StreamWriter) -> None:
        await server.send(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            await server.send(writer, b"x")
            await asyncio.sleep(0.2)

    return reply


def webhook(url: str, clock: FakeClock, http: httpx.AsyncClient, timeout_s: float) -> WebhookSink:
    return WebhookSink("crm", url=url, key=None, http=http, clock=clock, timeout_s=timeout_s)


def item() -> Item:
    return Item.from_body("d1", "all", json.dumps(arr_change("C1", 100.0, 50.0)))


async def test_a_300_mb_sink_reply_is_read_only_to_64_kib(raw: RawServer) -> None:
    """The delivery succeeds on the status; the rest of the body is never read."""
    raw.reply = huge(raw, 300 * 2**20)
    async with httpx.AsyncClient() as http:
        started = time.monotonic()
        result = await webhook(raw.url, FakeClock(), http, 10).send([item()])
    assert result.status == 200
    assert time.monotonic() - started < 5
    assert raw.written < 64 * 2**20  # the socket closed long before 300 MB went out


async def test_sinks_ask_for_identity_encoding_and_name_themselves(raw: RawServer) -> None:
    raw.reply = huge(raw, 0)
    async with httpx.AsyncClient() as http:
        await webhook(raw.url, FakeClock(), http, 10).send([item()])
    (headers,) = raw.requests
    assert headers["accept-encoding"] == "identity"
    assert headers["user-agent"] == f"gainsight-watcher/{__version__}"


async def test_a_gzip_bomb_sink_reply_expands_no_further_than_the_cap(raw: RawServer) -> None:
    raw.reply = bomb(raw, 400 * 2**20)
    async with httpx.AsyncClient() as http:
        tracemalloc.start()
        try:
            response = await bounded_post(
                http, raw.url, content=b"{}", headers={}, timeout=10, deadline_s=10,
                max_bytes=MAX_REPLY_BYTES, truncate=True,
            )  # fmt: skip
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code == 200
    assert len(response.content) == MAX_REPLY_BYTES
    assert peak < 16 * 2**20


async def test_a_trickling_sink_reply_cannot_hold_the_attempt_past_its_timeout(
    raw: RawServer,
) -> None:
    """One byte every 0.2 s never trips httpx's per-read timeout; the deadline does."""
    raw.reply = trickle(raw)
    async with httpx.AsyncClient() as http:
        started = time.monotonic()
        with pytest.raises(RetryableDispatchError, match="no answer within 1s"):
            await webhook(raw.url, FakeClock(), http, 1.0).send([item()])
    assert time.monotonic() - started < 3


def gainsight(url: str, http: httpx.AsyncClient, timeout_s: float = 10) -> GainsightClient:
    clock = FakeClock()
    return GainsightClient(
        http,
        base_url=url.removesuffix("/hook"),
        access_key="test-key-0123456789",
        budget=Budget(1000, 100_000, clock),
        clock=clock,
        max_retries=0,
        timeout_s=timeout_s,
    )


async def test_a_gzip_bomb_from_gainsight_is_refused_without_expanding_it(
    raw: RawServer,
) -> None:
    """199 KB of gzip expanding to 200 MB: a clear error, memory stays near the cap."""
    raw.reply = bomb(raw, 200 * 2**20)
    async with httpx.AsyncClient() as http:
        client = gainsight(raw.url, http)
        tracemalloc.start()
        try:
            with pytest.raises(MalformedResponseError, match="reply larger than 64 MiB"):
                await anext(client.iter_pages(source(), priority=Priority.HIGH))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 80 * 2**20  # the cap (64 MiB) and change; 457 MB before
    assert raw.requests[0]["user-agent"] == f"gainsight-watcher/{__version__}"


async def test_a_trickling_gainsight_reply_is_a_timeout_within_the_deadline(
    raw: RawServer,
) -> None:
    raw.reply = trickle(raw)
    async with httpx.AsyncClient() as http:
        client = gainsight(raw.url, http, timeout_s=1.0)
        started = time.monotonic()
        with pytest.raises(Exception, match="within 1s"):
            await anext(client.iter_pages(source(), priority=Priority.HIGH))
    assert time.monotonic() - started < 3


async def test_strict_reads_refuse_an_oversized_reply(raw: RawServer) -> None:
    raw.reply = huge(raw, 2**20)
    async with httpx.AsyncClient() as http:
        with pytest.raises(ReplyTooLargeError):
            await bounded_post(
                http, raw.url, content=b"{}", headers={}, timeout=10, deadline_s=10,
                max_bytes=1000,
            )  # fmt: skip
