"""Fixtures for the simulated tenant's tests: a running sim on loopback and a client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from watcher.clock import FakeClock
from watcher.testing.sim import RunningSim, running_sim

KEY = "sim-key"
HEADERS = {"Accesskey": KEY}


class Api:
    """A tiny synchronous client for one running sim."""

    def __init__(self, sim: RunningSim) -> None:
        self.sim = sim
        self.http = httpx.Client(base_url=sim.base_url, headers=HEADERS, timeout=10)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.http.post(path, json=body)

    def query(self, obj: str, body: dict[str, Any]) -> httpx.Response:
        return self.post(f"/v1/data/objects/query/{obj}", body)

    def records(self, obj: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        reply = self.query(obj, body)
        assert reply.status_code == 200, reply.text
        payload = reply.json()
        assert payload["result"] is True, payload
        data = payload["data"]
        records: list[dict[str, Any]] = data["records"] if isinstance(data, dict) else data
        return records

    def ctas(
        self, body: dict[str, Any], path: str = "/v2/cockpit/cta/list"
    ) -> list[dict[str, Any]]:
        reply = self.post(path, body)
        assert reply.status_code == 200, reply.text
        payload = reply.json()
        assert payload["result"] is True, payload
        rows: list[dict[str, Any]] = payload["data"]
        return rows


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_api(clock: FakeClock) -> Iterator[Callable[..., Api]]:
    """``make_api(**running_sim kwargs)`` -> an :class:`Api` on a fresh sim (FakeClock)."""
    with ExitStack() as stack:

        def make(**kwargs: Any) -> Api:
            kwargs.setdefault("clock", clock)
            sim = stack.enter_context(running_sim(**kwargs))
            api = Api(sim)
            stack.callback(api.http.close)
            return api

        yield make


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api(companies=120, ctas=60, goals=12, seed=3)
