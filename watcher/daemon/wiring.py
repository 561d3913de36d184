"""Builds the daemon's real parts from a config: client, poll engine, rules, dispatcher.

Adapters between the packages and the runner's small protocols live here:

- :class:`EnginePoller` - one :class:`~watcher.poll.Poller` (and one store
  connection: the sweep's seen-set is connection-private) per source, sharing one
  Gainsight client and one request budget;
- :class:`CountingTransport` - counts every Gainsight response (and 429s) for
  ``/metrics`` without touching the client;
- the dispatcher counts delivery outcomes itself, into :class:`~watcher.daemon.metrics.Metrics`
  (passed as its ``counter``).

The request budget outlives reloads (a reload must not reset the per-minute window)
unless ``requests_per_minute`` / ``requests_per_day`` changed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from watcher.clock import Clock
from watcher.config import SourceConfig, WatcherConfig
from watcher.core.modes import Mode
from watcher.daemon.metrics import Metrics
from watcher.daemon.runner import Builder, Components, PollReport, is_auth_failure
from watcher.errors import PollError, StoreError
from watcher.logging import get_logger
from watcher.store.db import store_path
from watcher.store.usage import ApiUsage

if TYPE_CHECKING:  # imported where built: `watcher --help` stays fast
    from watcher.poll import Poller
    from watcher.store import Store


class CountingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; reports each response to ``metrics`` (and, given ``usage``, counts
    it per minute in the store for ``watcher status``)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        metrics: Metrics,
        usage: ApiUsage | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.inner = inner
        self.metrics = metrics
        self.usage = usage
        self.clock = clock

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await self.metrics.on_response(response)
        if self.usage is not None and self.clock is not None:
            try:
                await asyncio.to_thread(self.usage.record, self.clock.now(), response.status_code)
            except StoreError as exc:  # a count lost is no reason to fail the poll
                get_logger("watcher.daemon").warning("api_usage.not_recorded", error=str(exc))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class EnginePoller:
    """The runner's :class:`~watcher.daemon.runner.Poller` over the poll engine."""

    pollers: Mapping[str, Poller]

    async def poll(self, source: SourceConfig, mode: Mode) -> PollReport:
        try:
            result = await self.pollers[source.name].poll(source, mode, trigger="scheduled")
        except PollError as exc:  # the engine has logged poll.finished (failed)
            return PollReport(
                outcome="failed", error=str(exc), logged=True, auth=is_auth_failure(exc)
            )
        return PollReport(
            outcome=result.outcome,
            pages=result.pages,
            records=result.records,
            calls=result.api_calls,
            events=len(result.events) or (result.created + result.updated + result.deleted),
            logged=True,
        )


def mark_interrupted(config: WatcherConfig, base_dir: Path, clock: Clock) -> int:
    """Close poll rows a previous daemon left ``running`` (only the lock holder may)."""
    from watcher.store import Store

    store = Store.open(store_path(config, base_dir), clock=clock)
    try:
        return store.mark_interrupted()
    finally:
        store.close()


def real_builder(
    *,
    clock: Clock,
    base_dir: Path,
    metrics: Metrics,
    environ: Mapping[str, str] | None = None,
    gainsight_transport: httpx.AsyncBaseTransport | None = None,
) -> Builder:
    """A :data:`~watcher.daemon.runner.Builder` for the real packages."""
    from watcher.gainsight import Budget, budget_from_config

    budgets: dict[tuple[int, int], Budget] = {}

    async def build(config: WatcherConfig) -> Components:
        from watcher.delivery.dispatcher import Dispatcher
        from watcher.delivery.sinks import build_sinks, load_checked_rules, sink_health
        from watcher.gainsight import open_client
        from watcher.poll import Poller
        from watcher.rules.match import build_router
        from watcher.store import Store
        from watcher.store.db import open_database

        rules = load_checked_rules(config, base_dir=base_dir)
        router = build_router(rules)
        gs = config.gainsight
        limits = (gs.requests_per_minute, gs.requests_per_day)
        if limits not in budgets:
            budgets.clear()
            budgets[limits] = budget_from_config(config, clock)
        stack = contextlib.AsyncExitStack()
        stores: list[Store] = []
        usage = ApiUsage(store_path(config, base_dir))
        stack.callback(usage.close)
        try:
            inner = gainsight_transport or httpx.AsyncHTTPTransport()
            client = await stack.enter_async_context(
                open_client(
                    config,
                    clock=clock,
                    base_dir=base_dir,
                    budget=budgets[limits],
                    environ=environ,
                    transport=CountingTransport(inner, metrics, usage, clock),
                )
            )
            db = store_path(config, base_dir)
            pollers = {}
            for source in config.sources:
                store = Store.open(db, clock=clock)
                stores.append(store)
                pollers[source.name] = Poller(
                    store,
                    client,
                    host=gs.host,
                    clock=clock,
                    matcher=router,
                )
            delivery_http = await stack.enter_async_context(
                httpx.AsyncClient(timeout=httpx.Timeout(30.0), follow_redirects=False)
            )
            sinks = build_sinks(
                config, http=delivery_http, clock=clock, base_dir=base_dir, environ=environ
            )
            outbox_db = open_database(db)
            stack.callback(outbox_db.conn.close)
            dispatcher = Dispatcher(
                outbox_db,
                sinks,
                clock=clock,
                rules=list(rules),
                sink_configs=config.sinks,
                counter=metrics,
            )
            for poller in pollers.values():
                poller.on_commit = dispatcher.wake  # deliver on commit, not at poll end
        except BaseException:
            for store in stores:
                store.close()
            await stack.aclose()
            raise

        async def aclose() -> None:
            await dispatcher.aclose()
            for store in stores:
                store.close()
            await stack.aclose()

        return Components(
            poller=EnginePoller(pollers),
            dispatcher=dispatcher if sinks else None,  # nothing to deliver to
            summary={"rules": len(rules), "sinks": sorted(config.sinks)},
            aclose=aclose,
            wake_dispatcher=dispatcher.wake,
            sink_health=lambda: sink_health(sinks),
            rule_names=tuple(r.name for r in rules),
        )

    return build
