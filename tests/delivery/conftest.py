"""Fixtures: a real SQLite store (real migrations), a fake clock, loopback receivers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from tests.rules.events import event
from watcher.clock import FakeClock
from watcher.config import WatcherConfig, parse_config
from watcher.core.events import CloudEvent
from watcher.delivery.dispatcher import Dispatcher
from watcher.delivery.sinks import build_sinks
from watcher.rules.loader import RuleSet
from watcher.rules.match import build_router
from watcher.rules.models import Rule
from watcher.store.db import open_database
from watcher.store.store import PageCommit, Store
from watcher.testing.receivers import SlackReceiver, WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture
def clock() -> FakeClock:
    # Real "now" so Standard Webhooks' 5-minute timestamp tolerance holds.
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def webhook(clock: FakeClock) -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(clock=clock) as receiver:
        yield receiver


@pytest.fixture
async def slack(clock: FakeClock) -> AsyncIterator[SlackReceiver]:
    async with SlackReceiver(clock=clock) as receiver:
        yield receiver


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def make_config(sinks: dict[str, Any]) -> WatcherConfig:
    return parse_config(
        {
            "gainsight": {"base_url": "https://acme.gainsightcloud.com", "access_key_env": "K"},
            "sources": [{"name": "companies", "kind": "company"}],
            "sinks": sinks,
        }
    )


def make_rules(*rules: dict[str, Any]) -> RuleSet:
    base: dict[str, Any] = {"sources": ["companies"], "on": ["updated", "created", "deleted"]}
    return RuleSet(tuple(Rule.model_validate({**base, **r}) for r in rules))


class Harness:
    """A store routing through ``rules``, and a dispatcher over the configured sinks."""

    def __init__(
        self,
        tmp_path: Path,
        clock: FakeClock,
        http: httpx.AsyncClient,
        sinks: dict[str, Any],
        rules: RuleSet,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.clock = clock
        self.config = make_config(sinks)
        self.rules = rules
        self.db = open_database(tmp_path / "watcher.db")
        self.store = Store(self.db, clock=clock)
        self.router = build_router(rules)
        self.environ = {"WH_SECRET": SECRET, **(environ or {})}
        self.sinks = build_sinks(self.config, http=http, clock=clock, environ=self.environ)
        self.dispatcher = self.new_dispatcher()

    def new_dispatcher(self) -> Dispatcher:
        return Dispatcher(
            self.db,
            self.sinks,
            clock=self.clock,
            rules=list(self.rules),
            sink_configs=self.config.sinks,
        )

    def commit(self, *events: Mapping[str, Any]) -> list[CloudEvent]:
        page = PageCommit(events=cast(list[CloudEvent], list(events)))
        return self.store.commit("companies", page.route(self.router))

    def statuses(self) -> dict[str, int]:
        return self.dispatcher.outbox.counts()


@pytest.fixture
def harness(
    tmp_path: Path, clock: FakeClock, http: httpx.AsyncClient
) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(sinks: dict[str, Any], *rules: dict[str, Any], **kw: Any) -> Harness:
        h = Harness(tmp_path, clock, http, sinks, make_rules(*rules), **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.db.conn.close()


def arr_change(
    key: str, old: float, new: float, n: int = 0, *, time: str | None = None
) -> CloudEvent:
    """An Arr update of company ``key``; ``n`` makes the event id unique; ``time`` is
    when the change was seen (the event's ``time``)."""
    ev = event(
        "updated",
        key=key,
        before={"Gsid": key, "Name": f"Company {key}", "Arr": old},
        after={"Gsid": key, "Name": f"Company {key}", "Arr": new},
        **({"time": time} if time else {}),
    )
    ev["id"] = f"evt-{key}-{n}"
    return ev
