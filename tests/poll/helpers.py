"""Shared builders for poll engine tests: sources, records, a poller over memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from watcher.clock import FakeClock
from watcher.config import SourceConfig
from watcher.core.events import CloudEvent
from watcher.gainsight import Budget, GainsightClient
from watcher.poll import Poller
from watcher.store import Store
from watcher.testing.memory import MemorySource
from watcher.testing.sim import RunningSim

HOST = "acme.gainsightcloud.com"


def source_config(**overrides: Any) -> SourceConfig:
    values: dict[str, Any] = {
        "name": "companies",
        "kind": "company",
        "select": ("Gsid", "Name", "Arr", "Stage", "ModifiedDate"),
        "ignore_fields": ("ModifiedDate",),
        "page_size": 10,
    }
    values.update(overrides)
    return SourceConfig(**values)


def company(i: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "Gsid": f"1P02{i:06d}",
        "Name": f"Company {i}",
        "Arr": 1000.0 * i,
        "Stage": "Launched",
        "ModifiedDate": "2026-11-23T10:00:00.000Z",
    }
    record.update(fields)
    return record


def tenant(n: int, page_size: int = 10) -> MemorySource:
    records = {r["Gsid"]: r for r in (company(i) for i in range(n))}
    return MemorySource(records, page_size=page_size)


class Harness:
    """A store file, a memory tenant and a poller over them, with a fake clock."""

    def __init__(self, path: Path, feed: MemorySource, **poller_options: Any) -> None:
        self.path = path
        self.clock = FakeClock()
        self.feed = feed
        self.store = Store.open(path, clock=self.clock)
        self.poller = Poller(self.store, feed, host=HOST, clock=self.clock, **poller_options)

    def reopen(self, **poller_options: Any) -> None:
        """A fresh process: new connection and poller over the same file."""
        self.store.close()
        self.store = Store.open(self.path, clock=self.clock)
        self.poller = Poller(self.store, self.feed, host=HOST, clock=self.clock, **poller_options)

    def events(self) -> list[CloudEvent]:
        return [e.cloudevent() for e in self.store.list_events()]

    def changes(self) -> list[tuple[str, str]]:
        return [(e["data"]["change"], e["subject"]) for e in self.events()]


def sim_client(http: httpx.AsyncClient, sim: RunningSim, clock: FakeClock) -> GainsightClient:
    """A client of the simulated tenant whose own budget never makes it wait."""
    return GainsightClient(
        http,
        base_url=sim.base_url,
        access_key=sim.access_key,
        budget=Budget(1_000_000, 100_000_000, clock),
        clock=clock,
    )
