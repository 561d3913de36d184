"""A tenant that serves fewer rows per page than asked (issue 14 item 2, issue 9).

2,500 companies; the server answers at most 1,000 rows to ``limit: 5000``. Sweeps,
incrementals and the watermark must behave as if every row had come in one page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.poll.helpers import sim_client
from watcher.clock import FakeClock
from watcher.config import SourceConfig
from watcher.dates import format_utc, from_epoch_ms
from watcher.gainsight.routes import path_of
from watcher.poll import Poller
from watcher.store import Store
from watcher.testing.sim import running_sim

COMPANIES = SourceConfig(
    name="companies",
    kind="company",
    select=("Gsid", "Name", "Arr", "ModifiedDate"),
    ignore_fields=("ModifiedDate",),
    incremental="*/2 * * * *",
    incremental_overlap="1m",
)  # page_size unset: limit 5000


async def test_a_server_capping_pages_below_the_limit_loses_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    with running_sim(
        companies=2500,
        ctas=0,
        goals=0,
        clock=clock,
        requests_per_minute=1_000_000,
        requests_per_day=100_000_000,
        max_limit=1000,
        over_limit="clamp",
    ) as sim:
        async with httpx.AsyncClient(timeout=30) as http:
            client = sim_client(http, sim, clock)
            store = Store.open(tmp_path / "w.db", clock=clock)
            poller = Poller(store, client, host="127.0.0.1", clock=clock, max_kept_events=0)
            baseline = await poller.poll(COMPANIES)
            assert store.count_snapshots("companies") == 2500
            assert baseline.pages >= 3
            assert client.page_cap(path_of(COMPANIES)) == 1000

            keys = sim.tenant.keys("Company")
            clock.advance(60)
            sim.tenant.update("Company", keys[1999], {"Name": "Row 2000 renamed"})
            sim.tenant.delete("Company", keys[2399])
            await poller.poll(COMPANIES)
            changes = sorted(
                (e.cloudevent()["data"]["change"], e.subject) for e in store.list_events()
            )
            assert changes == sorted([("updated", keys[1999]), ("deleted", keys[2399])])

            # the first incremental after the baseline: no false created events
            clock.advance(120)
            before = len(store.list_events())
            result = await poller.poll(COMPANIES, "incremental")
            assert result.created == 0
            assert len(store.list_events()) == before

            # a bulk update of 1,200 records: every one reported, the watermark moves on
            clock.advance(120)
            bulk = keys[100:1300]
            for i, key in enumerate(bulk):
                sim.tenant.update("Company", key, {"Arr": 1_000_000.0 + i})
            clock.advance(60)
            result = await poller.poll(COMPANIES, "incremental")
            assert result.updated == 1200
            assert result.created == 0
            newest = max(_stored(sim.tenant.get("Company", k))["ModifiedDate"] for k in bulk)
            mark = store.state("companies").watermark
            assert mark is not None
            assert mark == format_utc(from_epoch_ms(newest))
            clock.advance(120)
            again = await poller.poll(COMPANIES, "incremental")
            assert again.updated == 0
            assert again.created == 0
            store.close()


def _stored(record: dict[str, Any] | None) -> dict[str, Any]:
    """A record the simulated tenant must hold."""
    assert record is not None
    return record


async def test_a_fast_lane_read_shorter_than_a_served_page_costs_one_call(
    tmp_path: Path,
) -> None:
    """A page of 300 rows was served (cap, if any, >= 300): an incremental page of a
    few rows is the end, not a short page to be probed with a second request."""
    clock = FakeClock()
    with running_sim(
        companies=300, ctas=0, goals=0, clock=clock, requests_per_minute=1_000_000
    ) as sim:
        async with httpx.AsyncClient(timeout=30) as http:
            client = sim_client(http, sim, clock)
            store = Store.open(tmp_path / "w.db", clock=clock)
            poller = Poller(store, client, host="127.0.0.1", clock=clock, max_kept_events=0)
            await poller.poll(COMPANIES)  # one page of 300 (of 5000 asked), then an empty one
            clock.advance(120)
            keys = sim.tenant.keys("Company")
            sim.tenant.update("Company", keys[7], {"Name": "renamed"})
            clock.advance(5)
            result = await poller.poll(COMPANIES, "incremental")
            assert result.updated == 1
            assert result.api_calls == 1
            store.close()
