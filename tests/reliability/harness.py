"""End-to-end "nothing lost" harness for the fault matrix.

The simulated tenant over loopback (``running_sim``, FakeClock), the real
:class:`GainsightClient`, the real poll engine and a real SQLite store whose router
queues one delivery per change event, and (optionally) the real dispatcher with
real local receivers. After a run with faults, a quiet settling sweep, and the
verdict of :mod:`tests.reliability.verify`: the events composed per key equal the
tenant's net changes (none missing, none false, no false delete), the store equals
the tenant, and every event reached its receiver.
"""

from __future__ import annotations

import base64
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.verify import Verdict, check_deliveries, check_truth
from watcher.clock import FakeClock
from watcher.config import SourceConfig, WatcherConfig, parse_config
from watcher.core.normalize import normalize_record
from watcher.delivery.dispatcher import Dispatcher
from watcher.delivery.sinks import build_sinks
from watcher.errors import PollError, StoreError
from watcher.gainsight import Budget, GainsightClient
from watcher.poll import Poller
from watcher.rules.loader import RuleSet
from watcher.rules.match import build_router
from watcher.rules.models import Rule
from watcher.sim.schema import COMPANY, CTA
from watcher.store import Store
from watcher.store.db import open_database
from watcher.testing.sim import RunningSim, running_sim

SECRET = "whsec_" + base64.b64encode(b"reliability-secret-0123456789ab").decode()
IGNORED = ("ModifiedDate",)
COMPANIES = SourceConfig(
    name="companies",
    kind="company",
    select=("Gsid", "Name", "Arr", "Stage", "Status", "Csm", "RenewalDate", "ModifiedDate"),
    ignore_fields=IGNORED,
    incremental="*/2 * * * *",
    incremental_overlap="1m",
    delete_log="*/10 * * * *",
    page_size=20,
)
CTAS = SourceConfig(
    name="ctas",
    kind="cta",
    select=("Gsid", "Name", "CompanyId", "StatusId", "DueDate", "IsClosed", "ModifiedDate"),
    ignore_fields=IGNORED,
    page_size=20,
)
SOURCES = (COMPANIES, CTAS)
OBJECTS = {"companies": COMPANY, "ctas": CTA}


def config_with(sinks: Mapping[str, Any]) -> WatcherConfig:
    return parse_config(
        {
            "gainsight": {"base_url": "http://127.0.0.1:1", "access_key_env": "K"},
            "sources": [{"name": "companies", "kind": "company"}, {"name": "ctas", "kind": "cta"}],
            "sinks": dict(sinks),
        }
    )


@dataclass
class E2E:
    sim: RunningSim
    clock: FakeClock
    client: GainsightClient
    store: Store
    poller: Poller
    path: Path
    dispatcher: Dispatcher | None = None
    state0: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq0: int = 0
    failures: list[str] = field(default_factory=list)

    def truth(self, source: SourceConfig) -> dict[str, dict[str, Any]]:
        table = self.sim.tenant.tables[OBJECTS[source.name]]
        with self.sim.tenant.lock:
            rows = [dict(r) for r in table.records.values()]
        return {r["Gsid"]: normalize_record({f: r.get(f) for f in source.select}) for r in rows}

    async def baseline(self) -> None:
        for source in SOURCES:
            await self.poller.poll(source)
        self.state0 = {s.name: self.truth(s) for s in SOURCES}
        self.seq0 = self.sim.tenant.last_seq

    async def poll(self, source: SourceConfig, mode: str = "full", **kw: Any) -> bool:
        """One poll; a failure must be a WatcherError (PollError naming the source, or a
        StoreError from recording the poll's start), recorded in ``failures``."""
        try:
            await self.poller.poll(source, mode, **kw)  # type: ignore[arg-type]
        except PollError as exc:
            assert source.name in str(exc)
            self.failures.append(str(exc))
            return False
        except StoreError as exc:
            assert str(exc).startswith("store: ")
            self.failures.append(str(exc))
            return False
        return True

    async def rounds(self, n: int = 3, *, mutations: int = 10) -> None:
        """Random changes, then an incremental, a delete-log read and full sweeps."""
        for _ in range(n):
            self.sim.tenant.random_mutations(mutations)
            self.clock.advance(90)
            await self.poll(COMPANIES, "incremental")
            await self.poll(COMPANIES, "delete_log")
            self.sim.tenant.random_mutations(mutations // 2)
            self.clock.advance(90)
            for source in SOURCES:
                await self.poll(source)

    def quiet(self) -> None:
        """Turn every fault off."""
        faults = self.sim.tenant.faults
        for name in ("error_rate", "result_false_rate", "malformed_rate", "truncated_rate"):
            setattr(faults, name, 0.0)
        faults.short_page_rate = 0.0
        faults.latency = 0.0
        faults.mutations_between_pages = 0
        faults.script = []
        self.sim.tenant.options.cockpit_unstable_order = False

    async def settle(self) -> None:
        self.quiet()
        self.clock.advance(90)
        for source in SOURCES:
            assert await self.poll(source, allow_mass_delete=True), self.failures[-1]

    def verdict(self, *, received: list[tuple[str, bytes, int]] | None = None) -> Verdict:
        verdict = Verdict()
        events = [e.cloudevent() for e in self.store.list_events()]
        log = self.sim.tenant.changes(self.seq0)
        for source in SOURCES:
            deleted = {
                c.key for c in log if c.change == "deleted" and c.object == OBJECTS[source.name]
            }
            check_truth(
                verdict,
                source.name,
                state0=self.state0[source.name],
                final=self.truth(source),
                stored=dict(self.store.iter_snapshots(source.name)),
                events=events,
                deleted_in_log=deleted,
                ignored=IGNORED,
            )
        if received is not None:
            rows = self.store.conn.execute("SELECT event_id, status FROM deliveries").fetchall()
            check_deliveries(verdict, events, [(str(a), str(b)) for a, b in rows], received)
        return verdict


@asynccontextmanager
async def e2e(
    tmp_path: Path,
    *,
    seed: int = 1,
    sinks: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    client_options: Mapping[str, Any] | None = None,
    companies: int = 120,
    ctas: int = 60,
    **sim_settings: Any,
) -> AsyncIterator[E2E]:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    settings: dict[str, Any] = {"requests_per_minute": 1_000_000, "requests_per_day": 10**9}
    settings.update(sim_settings)
    with running_sim(
        companies=companies, ctas=ctas, goals=0, seed=seed, clock=clock, **settings
    ) as sim:
        async with httpx.AsyncClient(timeout=10) as http, httpx.AsyncClient() as delivery_http:
            client = GainsightClient(
                http,
                base_url=sim.base_url,
                access_key=sim.access_key,
                budget=Budget(1_000_000, 10**9, clock),
                clock=clock,
                rng=random.Random(seed),
                **dict(client_options or {}),
            )
            path = tmp_path / "watcher.db"
            db = open_database(path)
            sink_names = sorted(sinks or {})
            rules = RuleSet(
                tuple(
                    Rule.model_validate(
                        {"name": f"all-{name}", "sources": ["companies", "ctas"], "sinks": [name]}
                    )
                    for name in sink_names
                )
            )
            store = Store(db, clock=clock)
            harness = E2E(
                sim,
                clock,
                client,
                store,
                Poller(store, client, host="sim", clock=clock, matcher=build_router(rules)),
                path,
            )
            if sinks:
                config = config_with(sinks)
                built = build_sinks(
                    config,
                    http=delivery_http,
                    clock=clock,
                    environ={"WH_SECRET": SECRET, **dict(environ or {})},
                )
                harness.dispatcher = Dispatcher(
                    db,
                    built,
                    clock=clock,
                    rules=list(rules),
                    sink_configs=config.sinks,
                    rng=random.Random(seed),
                )
            try:
                yield harness
            finally:
                if harness.dispatcher is not None:
                    await harness.dispatcher.aclose()
                db.conn.close()
