"""Deliver on commit: the dispatcher is woken by each committed page that queued
deliveries, so page 1's change reaches its sink while the sweep is still reading.

The source is gated: it does not hand over page 2 until the webhook has received
page 1's delivery. The dispatcher's own recheck is an hour away, so only the
wake-up from the commit can deliver in time; without it the gate times out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.delivery.conftest import SECRET, make_config, make_rules
from tests.poll.helpers import HOST, source_config, tenant
from watcher.clock import SystemClock
from watcher.config import SourceConfig
from watcher.delivery.dispatcher import Dispatcher
from watcher.delivery.sinks import build_sinks
from watcher.gainsight.budget import Priority
from watcher.gainsight.query import Condition, Direction
from watcher.poll import Poller
from watcher.rules.match import build_router
from watcher.store import Store
from watcher.store.db import open_database
from watcher.testing.memory import MemoryPage, MemorySource
from watcher.testing.receivers import WebhookReceiver


class GatedSource(MemorySource):
    """Hands over page 1, then waits for ``gate`` before any later page."""

    def __init__(self, inner: MemorySource) -> None:
        super().__init__(inner.records, page_size=inner.page_size)
        self.gate: asyncio.Future[None] | None = None
        self.passed_gate = False

    async def iter_pages(
        self,
        source: SourceConfig,
        *,
        conditions: Sequence[Condition] = (),
        order_by: Mapping[str, Direction] | None = None,
        priority: Priority = Priority.LOW,
    ) -> AsyncIterator[MemoryPage]:
        pages = super().iter_pages(
            source, conditions=conditions, order_by=order_by, priority=priority
        )
        async for page in pages:
            if page.number > 1 and self.gate is not None:
                await self.gate
                self.passed_gate = True
            yield page


async def test_page_one_is_delivered_before_the_sweep_reads_page_two(tmp_path: Path) -> None:
    clock = SystemClock()  # real time: the webhook signature's tolerance holds
    feed = GatedSource(tenant(30, page_size=10))
    rules = make_rules({"name": "all", "sinks": ["crm"]})
    store = Store.open(tmp_path / "watcher.db", clock=clock)
    db = open_database(tmp_path / "watcher.db")
    source = source_config()
    async with WebhookReceiver(clock=clock) as receiver, httpx.AsyncClient() as http:
        config = make_config(
            {"crm": {"type": "webhook", "url": receiver.url, "secret_env": "WH_SECRET"}}
        )
        sinks = build_sinks(config, http=http, clock=clock, environ={"WH_SECRET": SECRET})
        dispatcher = Dispatcher(
            db, sinks, clock=clock, rules=list(rules), sink_configs=config.sinks
        )
        poller = Poller(
            store,
            feed,
            host=HOST,
            clock=clock,
            matcher=build_router(rules),
            on_commit=dispatcher.wake,
        )
        await poller.poll(source, "full")  # silent baseline, nothing queued
        first, last = sorted(feed.records)[0], sorted(feed.records)[-1]
        feed.records[first] = {**feed.records[first], "Arr": 1.0}  # page 1
        feed.records[last] = {**feed.records[last], "Arr": 2.0}  # page 3

        loop = asyncio.get_running_loop()
        feed.gate = loop.create_future()
        stop = asyncio.Event()
        running = asyncio.create_task(dispatcher.run(stop, poll_interval=3600.0))

        async def open_gate_on_first_delivery() -> list[Any]:
            try:
                got = await receiver.wait_for(1, within=10.0)
            finally:
                assert feed.gate is not None
                feed.gate.set_result(None)  # never leave the sweep hanging
            return got

        opener = asyncio.create_task(open_gate_on_first_delivery())
        result = await poller.poll(source, "full")
        early = await opener  # raises TimeoutError when page 1 waited for the sweep's end
        assert feed.passed_gate
        assert result.updated == 2
        assert len(early) == 1
        assert b'"' + first.encode() + b'"' in early[0].body
        await receiver.wait_for(2, within=10.0)  # page 3's change follows on its commit
        stop.set()
        await running
    await dispatcher.aclose()
    db.conn.close()
    store.close()


async def test_the_daemon_wires_each_poller_commit_to_the_dispatcher(tmp_path: Path) -> None:
    """``watcher run``'s components: every source's poller wakes the dispatcher on commit."""
    from watcher.config import parse_config
    from watcher.daemon.metrics import Metrics
    from watcher.daemon.wiring import EnginePoller, real_builder

    config = parse_config(
        {
            "gainsight": {"base_url": "http://127.0.0.1:9", "access_key_env": "K"},
            "store": {"path": str(tmp_path / "watcher.db")},
            "sources": [{"name": "companies", "kind": "company"}, {"name": "ctas", "kind": "cta"}],
            "sinks": {"crm": {"type": "webhook", "url": "http://127.0.0.1:9/h"}},
        }
    )
    build = real_builder(
        clock=SystemClock(), base_dir=tmp_path, metrics=Metrics(), environ={"K": "k"}
    )
    components = await build(config)
    try:
        assert isinstance(components.poller, EnginePoller)
        assert components.dispatcher is not None
        wakes = {name: p.on_commit for name, p in components.poller.pollers.items()}
        assert set(wakes) == {"companies", "ctas"}
        assert all(w == components.dispatcher.wake for w in wakes.values())  # type: ignore[attr-defined]
    finally:
        assert components.aclose is not None
        await components.aclose()
