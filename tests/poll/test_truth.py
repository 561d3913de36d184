"""End to end against the simulated tenant: events equal the true net changes per key.

The tenant is served over loopback; random mutations happen between polls and
between the page requests of a poll (offset shifts, unstable Cockpit order). Each
run is repeated against the strict simulator (``--strict-docs``: only documented
requests are accepted, a CTA delete does not touch ModifiedDate) with the default
source settings, through full, incremental and delete-log reads. After a
final quiet sweep, for every key, the events composed in order (first ``before``,
last ``after``) must equal the net change between the baseline and the final
tenant state: none missing, none false, no false delete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.poll.helpers import sim_client
from tests.reliability.verify import Verdict, check_truth
from watcher.clock import FakeClock
from watcher.config import SourceConfig
from watcher.core.normalize import normalize_record
from watcher.poll import Poller
from watcher.sim.schema import COMPANY, CTA
from watcher.store import Store
from watcher.testing.sim import running_sim

IGNORED = ("ModifiedDate",)
COMPANIES = SourceConfig(
    name="companies",
    kind="company",
    select=(
        "Gsid",
        "Name",
        "Arr",
        "Mrr",
        "Employees",
        "Stage",
        "Status",
        "Csm",
        "RenewalDate",
        "ModifiedDate",
    ),
    ignore_fields=IGNORED,
    incremental="*/2 * * * *",
    incremental_overlap="1m",
    page_size=25,
)
CTAS = SourceConfig(
    name="ctas",
    kind="cta",
    select=(
        "Gsid",
        "Name",
        "CompanyId",
        "StatusId",
        "PriorityId",
        "DueDate",
        "IsClosed",
        "IsImportant",
        "ModifiedDate",
    ),
    ignore_fields=IGNORED,
    incremental="*/5 * * * *",
    page_size=20,
)
OBJECTS = {"companies": COMPANY, "ctas": CTA}


def truth(sim: Any, source: SourceConfig) -> dict[str, dict[str, Any]]:
    """The tenant's records of ``source``, projected on its select list and normalized."""
    table = sim.tenant.tables[OBJECTS[source.name]]
    with sim.tenant.lock:
        rows = [dict(r) for r in table.records.values()]
    return {r["Gsid"]: normalize_record({f: r.get(f) for f in source.select}) for r in rows}


def stored(store: Store, source: SourceConfig) -> dict[str, dict[str, Any]]:
    return dict(store.iter_snapshots(source.name))


async def run_truth(
    path: Path,
    seed: int,
    rounds: int = 4,
    *,
    strict: bool = False,
    ctas: SourceConfig = CTAS,
    companies: SourceConfig = COMPANIES,
    **sim_options: Any,
) -> None:
    clock = FakeClock()
    sources = (companies, ctas)
    with running_sim(
        **sim_options,
        strict_docs=strict,
        companies=150,
        ctas=90,
        goals=0,
        seed=seed,
        clock=clock,
        requests_per_minute=1_000_000,
        requests_per_day=100_000_000,
        cockpit_unstable_order=not strict,
    ) as sim:
        async with httpx.AsyncClient(timeout=10) as http:
            client = sim_client(http, sim, clock)
            store = Store.open(path, clock=clock)
            poller = Poller(store, client, host="127.0.0.1", clock=clock, max_kept_events=0)
            for source in sources:
                await poller.poll(source)
            state0 = {s.name: truth(sim, s) for s in sources}
            for source in sources:
                assert stored(store, source) == state0[source.name], "baseline != tenant"
            assert store.list_events() == []
            seq0 = sim.tenant.last_seq

            sim.tenant.faults.mutations_between_pages = 2
            for _ in range(rounds):
                sim.tenant.random_mutations(12)
                clock.advance(90)
                await poller.poll(companies, "incremental")
                await poller.poll(ctas, "incremental")
                sim.tenant.random_mutations(4)
                clock.advance(30)
                await poller.poll(companies, "delete_log")
                await poller.poll(ctas, "delete_log")
                sim.tenant.random_mutations(6)
                clock.advance(90)
                for source in sources:
                    await poller.poll(source)
            sim.tenant.faults.mutations_between_pages = 0
            for source in sources:
                await poller.poll(source, allow_mass_delete=True)

            log = sim.tenant.changes(seq0)
            assert log, "the run made no mutation"
            events = [e.cloudevent() for e in store.list_events()]
            verdict = Verdict()
            for source in sources:
                final = truth(sim, source)
                assert stored(store, source) == final, "final store != tenant"
                check_truth(
                    verdict,
                    source.name,
                    state0=state0[source.name],
                    final=final,
                    stored=stored(store, source),
                    events=events,
                    deleted_in_log={
                        c.key
                        for c in log
                        if c.change == "deleted" and c.object == OBJECTS[source.name]
                    },
                    ignored=IGNORED,
                )
            assert verdict.violations == []
            sequences = [e["sequence"] for e in events]
            assert sequences == sorted(set(sequences))
            store.close()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_events_equal_true_net_changes(tmp_path: Path, seed: int) -> None:
    """After random mutations, also between page requests: exact net changes per key."""
    await run_truth(tmp_path / "w.db", seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
async def test_strict_docs_tenant_with_default_settings_gives_true_net_changes(
    tmp_path: Path, seed: int
) -> None:
    """The same against a tenant that accepts only documented requests."""
    await run_truth(tmp_path / "w.db", seed, strict=True)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
async def test_strict_docs_tenant_through_the_cockpit_list(tmp_path: Path, seed: int) -> None:
    """CTAs with api = "cockpit": only EQ/BTW/day values sent, EQ-OR look-ups confirm
    deletes, the whole deleted list is read (stable page order: see docs)."""
    cockpit = CTAS.model_copy(update={"api": "cockpit"})
    await run_truth(tmp_path / "w.db", seed, strict=True, ctas=cockpit)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
async def test_strict_docs_tenant_with_untouched_page_sizes_and_capped_pages(
    tmp_path: Path, seed: int
) -> None:
    """Default source settings exactly (limit 5000), against a strict tenant that serves
    at most 40 rows a page: every read spans several pages, learned from the answers."""
    defaults = {"page_size": None}
    await run_truth(
        tmp_path / "w.db",
        seed,
        strict=True,
        companies=COMPANIES.model_copy(update=defaults),
        ctas=CTAS.model_copy(update=defaults),
        max_limit=40,
        over_limit="clamp",
    )
