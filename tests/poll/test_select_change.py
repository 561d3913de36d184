"""Editing a source's `select` refreshes snapshots silently (issue 14 #3).

Against the simulated tenant over loopback, which answers exactly the selected
fields: removing `Nps` and adding `Stage__gr.Name` must not emit one event per
record, while a real change of a field both selects share still does.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.poll.helpers import sim_client
from watcher.cli.poll import print_summary
from watcher.clock import FakeClock
from watcher.config import SourceConfig
from watcher.poll import Poller
from watcher.store import Store
from watcher.testing.sim import running_sim

BASE = ("Gsid", "Name", "Arr", "Stage", "ModifiedDate")


def companies(*fields: str, **extra: Any) -> SourceConfig:
    return SourceConfig(
        name="companies",
        kind="company",
        select=(*BASE, *fields),
        ignore_fields=("ModifiedDate",),
        page_size=20,
        incremental="*/2 * * * *",
        incremental_overlap="1m",
        **extra,
    )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Poller, Store, object, FakeClock]]:
    clock = FakeClock()
    with running_sim(companies=45, ctas=0, goals=0, seed=7, clock=clock) as sim:
        async with httpx.AsyncClient(timeout=10) as http:
            client = sim_client(http, sim, clock)
            store = Store.open(tmp_path / "w.db", clock=clock)
            yield Poller(store, client, host="127.0.0.1", clock=clock), store, sim, clock
            store.close()


async def test_fields_added_or_removed_from_select_refresh_silently(
    world: tuple[Poller, Store, object, FakeClock],
) -> None:
    """Nps removed and Stage__gr.Name added: no event for them, the summary says so;
    an Arr change in the same poll is one event naming Arr only."""
    poller, store, sim, clock = world
    await poller.poll(companies("Nps"))
    key = sim.tenant.keys("Company")[3]  # type: ignore[attr-defined]
    clock.advance(60)
    sim.tenant.update("Company", key, {"Arr": 4242.0, "Nps": 77})  # type: ignore[attr-defined]
    new_select = companies("Stage__gr.Name")
    result = await poller.poll(new_select)
    assert result.outcome == "ok"
    events = [e.cloudevent() for e in store.list_events()]
    assert [(e["data"]["change"], e["subject"]) for e in events] == [("updated", key)]
    assert set(events[0]["data"]["changes"]) == {"Arr"}
    assert result.reselected == 45
    assert (result.fields_added, result.fields_removed) == (["Stage__gr.Name"], ["Nps"])
    snapshot = dict(store.iter_snapshots("companies"))[key]
    assert "Nps" not in snapshot
    assert "Stage__gr.Name" in snapshot
    out = io.StringIO()
    print_summary(result, out)
    assert "+Stage__gr.Name" in out.getvalue()
    assert "-Nps" in out.getvalue()

    again = await poller.poll(new_select)
    assert (again.reselected, again.updated) == (0, 0)
    assert len(store.list_events()) == 1


async def test_an_incremental_after_a_select_change_refreshes_what_it_reads(
    world: tuple[Poller, Store, object, FakeClock],
) -> None:
    """The incremental refreshes the records it reads; the next sweep refreshes the
    rest: no event for the new field at either step."""
    poller, store, sim, clock = world
    await poller.poll(companies())
    key = sim.tenant.keys("Company")[5]  # type: ignore[attr-defined]
    clock.advance(60)
    sim.tenant.update("Company", key, {"Name": "Renamed Inc"})  # type: ignore[attr-defined]
    wider = companies("Employees")
    inc = await poller.poll(wider, "incremental")
    full = await poller.poll(wider)
    events = [e.cloudevent() for e in store.list_events()]
    assert [(e["data"]["change"], e["subject"]) for e in events] == [("updated", key)]
    assert set(events[0]["data"]["changes"]) == {"Name"}
    assert inc.reselected >= 1
    assert inc.reselected + full.reselected == 45
