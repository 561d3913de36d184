"""A poll's ``api_calls`` is the number of requests Gainsight served (issue 10: the
engine counts a look-up by key with the size the client batches by)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.poll.helpers import sim_client
from watcher.clock import FakeClock
from watcher.config import SourceConfig
from watcher.poll import Poller
from watcher.store import Store
from watcher.testing.sim import running_sim

COCKPIT_CTAS = SourceConfig(
    name="ctas",
    kind="cta",
    api="cockpit",
    select=("Gsid", "Name", "ModifiedDate"),
    ignore_fields=("ModifiedDate",),
    max_delete_fraction=1.0,
)  # page_size unset: 1000 rows a page, but key look-ups go 25 keys a request


async def test_a_sweep_confirming_many_deletes_counts_every_look_up_request(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with running_sim(
        companies=0,
        ctas=80,
        goals=0,
        clock=clock,
        requests_per_minute=1_000_000,
        requests_per_day=100_000_000,
    ) as sim:
        async with httpx.AsyncClient(timeout=30) as http:
            client = sim_client(http, sim, clock)
            store = Store.open(tmp_path / "w.db", clock=clock)
            try:
                poller = Poller(store, client, host="127.0.0.1", clock=clock, max_kept_events=0)
                await poller.poll(COCKPIT_CTAS)
                for key in sim.tenant.keys("call_to_action")[:40]:
                    sim.tenant.delete("call_to_action", key)
                clock.advance(60)
                served = sim.tenant.requests_served
                result = await poller.poll(COCKPIT_CTAS)
                assert result.deleted == 40
                assert result.api_calls == sim.tenant.requests_served - served
            finally:
                store.close()
