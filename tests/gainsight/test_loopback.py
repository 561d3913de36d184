"""The client against the simulated tenant over a real loopback socket, quirk by quirk."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from watcher.clock import FakeClock
from watcher.config import SourceConfig, parse_config
from watcher.core.normalize import normalize_record
from watcher.errors import ApiError, AuthError, MalformedResponseError
from watcher.gainsight import Condition, GainsightClient, Priority, check_connection
from watcher.gainsight.query import modified_since
from watcher.testing.sim import running_sim

from .helpers import sim_client, source

COMPANIES = source(select=("Gsid", "Name", "Arr", "Stage", "RenewalDate", "CreatedDate"))
CTAS = source(name="ctas", kind="cta", select=("Gsid", "Name", "DueDate", "IsClosed"))
COCKPIT_CTAS = CTAS.model_copy(update={"api": "cockpit"})
GOALS = source(name="goals", kind="goal", object="cs_goal", select=("Gsid", "Name", "DueDate"))


async def read(client: GainsightClient, src: SourceConfig, **kw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async for page in client.iter_pages(src, **kw):
        out.extend(page.records)
    return out


def keys(records: list[dict[str, Any]], field: str = "Gsid") -> list[str]:
    return [r[field] for r in records]


async def test_offset_paging_reads_every_company_once_and_stops_on_a_short_page() -> None:
    clock = FakeClock()
    with running_sim(companies=50, clock=clock) as sim:
        async with sim_client(sim.base_url, clock=clock) as client:
            pages = [
                p async for p in client.iter_pages(COMPANIES.model_copy(update={"page_size": 7}))
            ]
            truth = sim.tenant.keys("Company")
    assert [p.number for p in pages] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [len(p.records) for p in pages] == [7] * 7 + [1]
    got = [r["Gsid"] for p in pages for r in p.records]
    assert sorted(got) == sorted(truth)
    assert len(set(got)) == 50
    assert all(k.startswith("1P02") for k in got)
    assert client.budget.stats.calls == 8


async def test_an_exact_multiple_ends_on_an_empty_page() -> None:
    clock = FakeClock()
    with running_sim(companies=50, clock=clock) as sim:
        async with sim_client(sim.base_url, clock=clock) as client:
            pages = [
                p async for p in client.iter_pages(COMPANIES.model_copy(update={"page_size": 10}))
            ]
    assert [len(p.records) for p in pages] == [10, 10, 10, 10, 10, 0]


async def test_page_number_paging_reads_every_cta_and_goal() -> None:
    clock = FakeClock()
    with running_sim(companies=20, ctas=20, goals=5, clock=clock) as sim:
        async with sim_client(sim.base_url, clock=clock) as client:
            cockpit = COCKPIT_CTAS.model_copy(update={"page_size": 6})
            pages = [p async for p in client.iter_pages(cockpit)]
            goals = await read(client, GOALS.model_copy(update={"page_size": 2}))
            truth_ctas = sim.tenant.keys("call_to_action")
            truth_goals = sim.tenant.keys("cs_goal")
    assert [len(p.records) for p in pages] == [6, 6, 6, 2]
    assert sorted(r["Gsid"] for p in pages for r in p.records) == sorted(truth_ctas)
    assert all(r["Gsid"].startswith("1S01") for p in pages for r in p.records)
    assert sorted(keys(goals)) == sorted(truth_goals)
    assert {"Gsid", "Name", "DueDate", "IsClosed", "ModifiedDate"} <= set(pages[0].records[0])


@pytest.mark.parametrize("shape", ["records", "list"])
async def test_both_data_shapes_read_the_same_rows(shape: str) -> None:
    clock = FakeClock()
    with running_sim(companies=30, clock=clock, data_shape="records") as sim:
        async with sim_client(sim.base_url, clock=clock) as client:
            expected = await read(client, COMPANIES)
            sim.tenant.options.data_shape = shape  # type: ignore[assignment]
            got = await read(client, COMPANIES)
    assert got == expected
    assert len(got) == 30


@pytest.mark.parametrize("form", ["empty", "result_false", "gsobj_1011"])
@pytest.mark.parametrize("src", [COMPANIES, CTAS], ids=["mda", "cockpit"])
async def test_every_empty_form_reads_as_no_rows(form: str, src: SourceConfig) -> None:
    clock = FakeClock()
    nothing = (Condition("Gsid", "EQ", ("1P02NOTHERE",)),)
    with running_sim(companies=10, ctas=5, clock=clock, empty_form=form) as sim:
        async with sim_client(sim.base_url, clock=clock) as client:
            pages = [p async for p in client.iter_pages(src, conditions=nothing)]
    assert len(pages) == 1
    assert pages[0].records == []
    assert pages[0].calls == 1


async def test_epoch_ms_and_iso_dates_normalize_to_the_same_values() -> None:
    """The client hands records over as received; the one normalization makes the epoch-ms
    and ISO answers of one tenant equal."""
    clock = FakeClock()
    with running_sim(companies=25, clock=clock, date_modes={"company": "epoch_ms"}) as sim:
        async with sim_client(sim.base_url, clock=clock) as client:
            raw_epoch = await read(client, COMPANIES)
            sim.tenant.options.date_modes = {"company": "iso"}
            raw_iso = await read(client, COMPANIES)
    assert raw_epoch != raw_iso  # as received
    as_epoch = [normalize_record(r) for r in raw_epoch]
    as_iso = [normalize_record(r) for r in raw_iso]
    assert as_epoch == as_iso
    sample = as_iso[0]
    assert sample["ModifiedDate"].endswith("Z")
    assert len(sample["ModifiedDate"]) == len("2026-11-23T16:00:00.000Z")
    assert any(r["RenewalDate"] and r["RenewalDate"].endswith("T00:00:00.000Z") for r in as_iso)


async def test_result_false_on_200_is_an_api_error_with_code_and_request_id() -> None:
    clock = FakeClock()
    with running_sim(companies=5, clock=clock, script=["result_false"]) as sim:
        async with sim_client(sim.base_url, clock=clock) as client:
            with pytest.raises(ApiError) as info:
                await read(client, COMPANIES)
    assert info.value.error_code == "GU_1101"
    assert info.value.request_id
    assert info.value.request_id in str(info.value)
    assert 'GU_1101 "Oops, something went wrong"' in str(info.value)


async def test_a_wrong_key_fails_at_once_with_auth_error() -> None:
    clock = FakeClock()
    with running_sim(companies=5, clock=clock, access_key="right-key") as sim:
        async with sim_client(sim.base_url, clock=clock, access_key="wrong-key") as client:
            with pytest.raises(AuthError, match="access_key_env") as info:
                await client.ping()
            assert client.stats.requests == 1
    assert info.value.error_code == "GS_APIG_2401"
    assert "wrong-key" not in str(info.value)


async def test_429_from_the_tenant_is_backed_off_and_the_read_completes() -> None:
    """With no Retry-After, exponential backoff (on the shared fake clock) outlasts the window."""
    clock = FakeClock()
    with running_sim(companies=40, clock=clock, requests_per_minute=3) as sim:
        async with sim_client(sim.base_url, clock=clock, max_retries=8) as client:
            got = await read(client, COMPANIES.model_copy(update={"page_size": 5}))
            truth = sim.tenant.keys("Company")
    assert sorted(keys(got)) == sorted(truth)
    assert client.stats.rate_limited > 0
    assert client.budget.stats.rate_limited == client.stats.rate_limited
    assert clock.slept  # waited on the fake clock, not the wall clock


async def test_429_with_retry_after_waits_exactly_that_long() -> None:
    clock = FakeClock()
    with running_sim(companies=10, clock=clock, requests_per_minute=2, retry_after=True) as sim:
        async with sim_client(sim.base_url, clock=clock) as client:
            clock.advance(15)  # 16:00:15: the sim's fixed window resets at 16:01:00
            await client.ping()
            await client.ping()
            await client.ping()
    assert client.stats.rate_limited == 1
    assert clock.slept == [pytest.approx(45)]


async def test_a_budget_matching_the_tenant_never_trips_its_limit() -> None:
    """The sliding window plus margin keeps a long read under the server's fixed window."""
    clock = FakeClock()
    with running_sim(companies=60, clock=clock, requests_per_minute=4) as sim:
        async with sim_client(sim.base_url, clock=clock, per_minute=4) as client:
            got = await read(client, COMPANIES.model_copy(update={"page_size": 5}))
    assert len(got) == 60
    assert client.stats.rate_limited == 0
    assert client.budget.stats.calls == 13
    # a sweep (LOW) takes 3 of the 4 slots a minute, one is kept for incremental polls
    assert client.budget.stats.waits == 4


async def test_5xx_faults_are_retried_and_the_read_is_complete() -> None:
    clock = FakeClock()
    with running_sim(companies=40, clock=clock, error_rate=0.3, seed=5) as sim:
        async with sim_client(sim.base_url, clock=clock, max_retries=10) as client:
            got = await read(client, COMPANIES.model_copy(update={"page_size": 4}))
            truth = sim.tenant.keys("Company")
    assert sorted(keys(got)) == sorted(truth)
    assert client.stats.errors.get("server", 0) > 0


@pytest.mark.parametrize("fault", ["malformed", "truncated"])
async def test_a_malformed_or_truncated_page_is_retried(fault: str) -> None:
    clock = FakeClock()
    with running_sim(companies=12, clock=clock, script=[None, fault, fault]) as sim:
        async with sim_client(sim.base_url, clock=clock) as client:
            pages = [
                p async for p in client.iter_pages(COMPANIES.model_copy(update={"page_size": 5}))
            ]
    assert [p.calls for p in pages] == [1, 3, 1]
    assert sum(len(p.records) for p in pages) == 12


async def test_a_page_that_stays_malformed_raises_malformed_response_error() -> None:
    clock = FakeClock()
    with running_sim(companies=5, clock=clock, malformed_rate=1.0) as sim:
        async with sim_client(sim.base_url, clock=clock) as client:
            with pytest.raises(MalformedResponseError):
                await client.ping()
            assert client.stats.requests == 3


async def test_incremental_filter_returns_only_records_modified_since() -> None:
    clock = FakeClock()
    with running_sim(companies=30, ctas=10, clock=clock) as sim:
        clock.advance(3600)
        since = clock.now()
        clock.advance(60)
        company_keys = sim.tenant.keys("Company")[:3]
        cta_keys = sim.tenant.keys("call_to_action")[:2]
        for key in company_keys:
            sim.tenant.mutate("update", "Company", key, {"Name": f"Renamed {key}"})
        for key in cta_keys:
            sim.tenant.mutate("update", "call_to_action", key, {"Name": f"Renamed {key}"})
        async with sim_client(sim.base_url, clock=clock) as client:
            companies = await read(
                client,
                COMPANIES,
                conditions=(modified_since(COMPANIES, since),),
                priority=Priority.HIGH,
            )
            ctas = await read(client, CTAS, conditions=(modified_since(CTAS, since),))
    assert sorted(keys(companies)) == sorted(company_keys)
    assert {r["Name"] for r in companies} == {f"Renamed {k}" for k in company_keys}
    assert sorted(keys(ctas)) == sorted(cta_keys)


async def test_delete_log_reads_company_deletes_after_since() -> None:
    """Deletes since ``since`` less 14 h (any zone reading of the filter is covered)."""
    clock = FakeClock()
    with running_sim(companies=30, ctas=10, clock=clock) as sim:
        early = sim.tenant.mutate("delete", "Company").key
        clock.advance(16 * 3600)
        since = clock.now()
        clock.advance(5)
        later = [sim.tenant.mutate("delete", "Company").key for _ in range(3)]
        sim.tenant.mutate("delete", "call_to_action")  # another object: not reported
        async with sim_client(sim.base_url, clock=clock) as client:
            deleted = await client.deleted_since(COMPANIES, since)
            everything = await client.deleted_since(COMPANIES, since - timedelta(hours=3))
    assert sorted(d.key for d in deleted) == sorted(later)
    assert sorted(d.key for d in everything) == sorted([early, *later])
    assert all(d.deleted_at is not None and d.deleted_at > since for d in deleted)


@pytest.mark.parametrize("strict", [False, True])
async def test_cta_deletes_come_from_the_whole_cockpit_deleted_list(strict: bool) -> None:
    """Every CTA deleted within retention, whatever its ModifiedDate (strict: a delete
    does not touch it) and however long ago; older than 15 days: gone."""
    clock = FakeClock()
    with running_sim(companies=10, ctas=15, clock=clock, strict_docs=strict) as sim:
        ancient = sim.tenant.mutate("delete", "call_to_action").key
        clock.advance(16 * 86_400)
        old = sim.tenant.mutate("delete", "call_to_action").key
        clock.advance(3600)
        since = clock.now()
        clock.advance(10)
        new = [sim.tenant.mutate("delete", "call_to_action").key for _ in range(2)]
        async with sim_client(sim.base_url, clock=clock) as client:
            deleted = await client.deleted_since(CTAS, since)
            cockpit = await client.deleted_since(COCKPIT_CTAS, since)
            remaining = await read(client, CTAS)
    assert sorted(d.key for d in deleted) == sorted([old, *new])
    assert sorted(d.key for d in cockpit) == sorted([old, *new])
    assert ancient not in {d.key for d in deleted}
    assert not {old, *new} & set(keys(remaining))


async def test_deletes_older_than_the_15_day_retention_are_gone() -> None:
    clock = FakeClock()
    with running_sim(companies=10, clock=clock) as sim:
        since = clock.now()
        clock.advance(1)
        sim.tenant.mutate("delete", "Company")
        clock.advance(16 * 86_400)
        async with sim_client(sim.base_url, clock=clock) as client:
            assert await client.deleted_since(COMPANIES, since) == []


async def test_fetch_by_keys_batches_and_skips_missing_keys() -> None:
    clock = FakeClock()
    with running_sim(companies=40, ctas=12, clock=clock) as sim:
        wanted = sim.tenant.keys("Company")[5:17]
        wanted_ctas = sim.tenant.keys("call_to_action")[:7]
        async with sim_client(sim.base_url, clock=clock) as client:
            got = await client.fetch_by_keys(COMPANIES, [*wanted, "1P02MISSING"], batch_size=5)
            calls = client.budget.stats.calls
            got_ctas = await client.fetch_by_keys(CTAS, wanted_ctas, batch_size=3)
    assert keys(got) == wanted
    # batches of 5: two complete answers (1 call each); the last asked for 3 keys and
    # got 2, which a capping server could also do, so one more call proves the end
    assert calls == 4
    assert keys(got_ctas) == wanted_ctas
    assert client.budget.stats.calls_high == client.budget.stats.calls


def test_check_connection_against_the_sim(tmp_path: Path) -> None:
    """``watcher check --connect`` reaches the tenant, and names the setting on a bad key."""
    with running_sim(companies=3, access_key="sim-key") as sim:
        cfg = parse_config({"gainsight": {"base_url": sim.base_url, "access_key_env": "SIM_KEY"}})
        message = check_connection(cfg, base_dir=tmp_path, environ={"SIM_KEY": "sim-key"})
        with pytest.raises(AuthError, match="access_key_env"):
            check_connection(cfg, base_dir=tmp_path, environ={"SIM_KEY": "nope"})
    assert message.startswith(f"reached {sim.base_url} (request id ")
