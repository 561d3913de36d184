"""Shared helpers for the Gainsight client tests."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from watcher.clock import FakeClock
from watcher.config import SourceConfig
from watcher.gainsight import Budget, GainsightClient

KEY = "test-key-0123456789"
BASE = "https://acme.gainsightcloud.com"


class SteppedClock:
    """A clock whose ``sleep`` blocks until the test advances time past its deadline."""

    def __init__(self) -> None:
        self._mono = 0.0
        self._start = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._mono)

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._mono + max(0.0, seconds), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        self._mono += seconds
        due = [(t, f) for t, f in self._sleepers if t <= self._mono]
        self._sleepers = [(t, f) for t, f in self._sleepers if t > self._mono]
        for _, fut in due:
            if not fut.done():
                fut.set_result(None)
        await settle()


async def settle(rounds: int = 20) -> None:
    """Let every ready task run until nothing more is runnable."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def source(**kw: Any) -> SourceConfig:
    base: dict[str, Any] = {"name": "companies", "kind": "company", "select": ("Gsid", "Name")}
    base.update(kw)
    return SourceConfig(**base)


def envelope(data: Any = None, *, result: bool = True, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "result": result,
        "errorCode": None,
        "errorDesc": None,
        "requestId": "req-1",
        "data": data,
        "message": None,
    }
    out.update(kw)
    return out


Handler = Callable[[httpx.Request], httpx.Response]


def json_response(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


@asynccontextmanager
async def mock_client(
    handler: Handler,
    *,
    clock: FakeClock | None = None,
    max_retries: int = 3,
    per_minute: int = 1000,
    per_day: int = 100_000,
    **kw: Any,
) -> AsyncIterator[GainsightClient]:
    clock = clock or FakeClock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        yield GainsightClient(
            http,
            base_url=BASE,
            access_key=KEY,
            budget=Budget(per_minute, per_day, clock),
            clock=clock,
            max_retries=max_retries,
            rng=random.Random(7),
            **kw,
        )


@asynccontextmanager
async def sim_client(
    base_url: str,
    *,
    clock: FakeClock,
    access_key: str = "sim-key",
    per_minute: int = 10_000,
    per_day: int = 1_000_000,
    max_retries: int = 5,
    **kw: Any,
) -> AsyncIterator[GainsightClient]:
    """A client on a real loopback connection to a running simulated tenant."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        yield GainsightClient(
            http,
            base_url=base_url,
            access_key=access_key,
            budget=Budget(per_minute, per_day, clock),
            clock=clock,
            max_retries=max_retries,
            rng=random.Random(3),
            **kw,
        )
