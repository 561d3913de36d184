"""Reads a live tenant needs: CTA deletes without ModifiedDate, schema drift, goals object."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from watcher.clock import FakeClock
from watcher.config import SourceConfig
from watcher.errors import PollError
from watcher.gainsight import Budget, GainsightClient
from watcher.poll import Poller
from watcher.store import Store
from watcher.testing.sim import running_sim

CTAS = SourceConfig(name="ctas", kind="cta", select=("Gsid", "Name", "StatusId"), page_size=4)
GOALS = SourceConfig(name="goals", kind="goal", select=("Gsid", "Name", "Status"))


def client_for(sim: object, http: httpx.AsyncClient, clock: FakeClock) -> GainsightClient:
    return GainsightClient(
        http,
        base_url=sim.base_url,  # type: ignore[attr-defined]
        access_key=sim.access_key,  # type: ignore[attr-defined]
        budget=Budget(100_000, 1_000_000, clock),
        clock=clock,
    )


@pytest.mark.parametrize("api", ["query", "cockpit"])
async def test_a_cta_deleted_without_being_modified_is_found_by_the_delete_read(
    tmp_path: Path, api: str
) -> None:
    """Strict tenant: the delete does not touch ModifiedDate; the delete-log poll still
    reports it (it reads the whole deleted list), long after the last poll."""
    clock = FakeClock()
    source = CTAS.model_copy(update={"api": api})
    with running_sim(companies=5, ctas=10, clock=clock, strict_docs=True) as sim:
        async with httpx.AsyncClient(timeout=10) as http:
            store = Store.open(tmp_path / "w.db", clock=clock)
            poller = Poller(store, client_for(sim, http, clock), host="h", clock=clock)
            await poller.poll(source)
            clock.advance(3 * 86_400)
            await poller.poll(source, "delete_log")
            victim = sim.tenant.keys("call_to_action")[3]
            modified = sim.tenant.get("call_to_action", victim)
            clock.advance(2 * 86_400)
            sim.tenant.delete("call_to_action", victim)
            assert sim.tenant.deleted_ctas[victim]["ModifiedDate"] == modified["ModifiedDate"]  # type: ignore[index]
            clock.advance(3600)
            result = await poller.poll(source, "delete_log")
            events = [e.cloudevent() for e in store.list_events()]
            store.close()
    assert result.deleted == 1
    assert [(e["data"]["change"], e["subject"]) for e in events] == [("deleted", victim)]


async def test_a_field_deleted_in_the_tenant_is_named_with_the_select_setting(
    tmp_path: Path,
) -> None:
    """Schema drift: Gainsight's 400 names the field; the error names it and the setting."""
    clock = FakeClock()
    drifted = SourceConfig(name="companies", kind="company", select=("Gsid", "Name", "Nps_X"))
    with running_sim(companies=5, clock=clock) as sim:
        async with httpx.AsyncClient(timeout=10) as http:
            store = Store.open(tmp_path / "w.db", clock=clock)
            poller = Poller(store, client_for(sim, http, clock), host="h", clock=clock)
            with pytest.raises(PollError) as info:
                await poller.poll(drifted)
            store.close()
    text = str(info.value)
    assert "GSOBJ_1008" in text
    assert "Nps_X in sources['companies'].select" in text
    assert "watcher discover Company" in text


async def test_a_goal_source_finds_its_object_in_the_tenant_metadata_once(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with running_sim(companies=5, goals=6, clock=clock, strict_docs=True) as sim:
        async with httpx.AsyncClient(timeout=10) as http:
            client = client_for(sim, http, clock)
            store = Store.open(tmp_path / "w.db", clock=clock)
            poller = Poller(store, client, host="h", clock=clock)
            await poller.poll(GOALS)
            calls = client.stats.requests
            sim.tenant.update("cs_goal", sim.tenant.keys("cs_goal")[0], {"Name": "Renamed"})
            clock.advance(60)
            await poller.poll(GOALS)
            events = [e.cloudevent() for e in store.list_events()]
            second = client.stats.requests - calls
            stored = store.meta_get("goal_object")
            store.close()
    assert stored == "cs_goal"
    assert [e["type"] for e in events] == ["gainsight.goal.updated"]
    assert second <= 3  # the sweep only: the object list is not read again


async def test_a_refused_cockpit_filter_shows_gainsights_words_and_the_setting() -> None:
    """What a tenant answers to an undocumented Cockpit filter reaches the admin verbatim
    (code and description), with the setting to change - not a generic summary."""
    from watcher.errors import ApiError
    from watcher.gainsight.query import Condition

    clock = FakeClock()
    cockpit = CTAS.model_copy(update={"api": "cockpit"})
    with running_sim(companies=3, ctas=5, clock=clock, strict_docs=True) as sim:
        async with httpx.AsyncClient(timeout=10) as http:
            client = client_for(sim, http, clock)
            with pytest.raises(ApiError) as info:
                async for _ in client.iter_pages(
                    cockpit, conditions=(Condition("Gsid", "GTE", ("1S01",)),)
                ):
                    pass
    text = str(info.value)
    assert 'COCKPIT_5102 "Invalid operator GTE for Gsid"' in text
    assert "/v2/cockpit/cta/list" in text
    assert "remove api = 'cockpit' from sources['ctas']" in text
