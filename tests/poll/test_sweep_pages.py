"""A full sweep settles a page it read before, in the same window and with the same
reply digest, when the stored window is unchanged since (watcher.store.sweep_pages):
no fingerprint, no key check, no stored row read. Anything else - a changed row, a
snapshot written or dropped behind the sweep, a page that moved - is read the usual
way, so the events are those of a sweep without hints."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import orjson

from tests.poll.helpers import Harness, company, sim_client, source_config, tenant
from watcher.clock import FakeClock
from watcher.config import SourceConfig
from watcher.gainsight.envelope import reply_digest
from watcher.poll import Poller
from watcher.store import Store
from watcher.testing.sim import running_sim


def _key(i: int) -> str:
    return str(company(i)["Gsid"])


class _Points(Counter[str]):
    def update_one(self, point: str) -> None:
        self[point] += 1


def _counting(tmp_path: Path, n: int = 40) -> tuple[Harness, _Points]:
    points = _Points()
    return Harness(tmp_path / "w.db", tenant(n), hook=points.update_one), points


def _hints(h: Harness) -> list[tuple[str, str, int]]:
    rows = h.store.conn.execute(
        "SELECT after, last, count FROM sweep_pages WHERE source = 'companies' ORDER BY after"
    ).fetchall()
    return [tuple(r) for r in rows]


async def test_an_unchanged_tenant_is_settled_page_by_page_without_reading_rows(
    tmp_path: Path,
) -> None:
    h, points = _counting(tmp_path)
    src = source_config()
    await h.poller.poll(src)  # the baseline reads every page and leaves a hint for each
    assert _hints(h) == [
        ("", _key(9), 10),
        (_key(9), _key(19), 10),
        (_key(19), _key(29), 10),
        (_key(29), _key(39), 10),
    ]
    reads: list[str] = []
    h.store.conn.set_trace_callback(reads.append)
    points.clear()

    steady = await h.poller.poll(src)

    h.store.conn.set_trace_callback(None)
    assert (steady.pages, steady.records, steady.updated, steady.missing) == (5, 40, 0, 0)
    assert points["page_settled"] == steady.settled == 4  # the fifth page is empty
    assert not [s for s in reads if s.startswith("SELECT key, fp")]  # no row read
    assert not [s for s in reads if s.startswith(("INSERT INTO snapshots", "UPDATE snapshots"))]
    assert h.changes() == []


async def test_a_changed_row_reads_its_page_and_no_other(tmp_path: Path) -> None:
    h, points = _counting(tmp_path)
    src = source_config()
    await h.poller.poll(src)
    key = _key(25)
    h.feed.records[key] = company(25, Arr=1.5)
    points.clear()

    changed = await h.poller.poll(src)

    assert changed.updated == 1
    assert points["page_settled"] == 3
    assert h.changes() == [("updated", key)]
    points.clear()
    again = await h.poller.poll(src)  # the page read again left a new hint
    assert (again.updated, points["page_settled"]) == (0, 4)


async def test_a_snapshot_changed_behind_the_sweep_is_compared_again(tmp_path: Path) -> None:
    """The tenant answers the very same page, but the stored window changed since the
    hint was kept (another writer, the fast lane): the page is read the usual way, and
    the stored value is reported back to the tenant's."""
    h, points = _counting(tmp_path)
    src = source_config()
    await h.poller.poll(src)
    key = _key(12)
    h.store.conn.execute(
        "UPDATE snapshots SET body = json_set(body, '$.Arr', 7.0), fp = fp + 1 "
        "WHERE source = 'companies' AND key = ?",
        (key,),
    )
    points.clear()

    result = await h.poller.poll(src)

    assert result.updated == 1
    assert points["page_settled"] == 3
    (event,) = h.events()
    assert event["subject"] == key
    assert event["data"]["changes"]["Arr"]["old"] == 7.0


async def test_a_snapshot_dropped_behind_the_sweep_is_created_again(tmp_path: Path) -> None:
    h, points = _counting(tmp_path)
    src = source_config()
    await h.poller.poll(src)
    key = _key(31)
    h.store.conn.execute("DELETE FROM snapshots WHERE source = 'companies' AND key = ?", (key,))
    points.clear()

    result = await h.poller.poll(src)

    assert (result.created, points["page_settled"]) == (1, 3)
    assert h.store.count_snapshots("companies") == 40


async def test_a_deleted_row_is_found_and_the_hints_follow_the_moved_windows(
    tmp_path: Path,
) -> None:
    """Deleting a row moves every later row one place up: the pages after it differ
    from the hints, are read the usual way, and the hints of windows no sweep has any
    more are dropped."""
    h, points = _counting(tmp_path)
    src = source_config(max_delete_fraction=1.0)
    await h.poller.poll(src)
    gone = _key(14)
    h.feed.records.pop(gone)
    points.clear()

    result = await h.poller.poll(src)

    assert (result.missing, result.deleted) == (1, 1)
    assert points["page_settled"] == 1  # page 1 only
    assert h.changes() == [("deleted", gone)]
    assert _hints(h) == [
        ("", _key(9), 10),
        (_key(9), _key(20), 10),
        (_key(20), _key(30), 10),
        (_key(30), _key(39), 9),
    ]
    points.clear()
    await h.poller.poll(src)
    assert points["page_settled"] == 4


async def test_pages_without_a_digest_leave_no_hint(tmp_path: Path) -> None:
    h, points = _counting(tmp_path)
    h.feed.digests = False
    src = source_config()
    await h.poller.poll(src)
    await h.poller.poll(src)
    assert (_hints(h), points["page_settled"]) == ([], 0)


async def test_a_dry_run_neither_settles_nor_leaves_hints(tmp_path: Path) -> None:
    h, points = _counting(tmp_path)
    src = source_config()
    await h.poller.poll(src, dry_run=True)
    assert _hints(h) == []
    await h.poller.poll(src)
    points.clear()
    h.feed.records[_key(3)] = company(3, Arr=2.5)
    dry = await h.poller.poll(src, dry_run=True)
    assert (dry.updated, points["page_settled"]) == (1, 0)


# -- the reply's digest --------------------------------------------------------------


def _reply(rows: list[dict[str, object]], request_id: str) -> tuple[bytes, object]:
    body = {"result": True, "errorCode": None, "requestId": request_id, "data": {"records": rows}}
    content = orjson.dumps(body)
    return content, orjson.loads(content)


def test_a_reply_digest_leaves_the_request_id_out_and_nothing_else() -> None:
    rows = [company(1), company(2)]
    one, two = _reply(rows, "9f1c-aa"), _reply(rows, "0b7e-bb")
    assert reply_digest(*one) == reply_digest(*two)
    other = _reply([company(1), company(2, Arr=1.0)], "9f1c-aa")
    assert reply_digest(*other) != reply_digest(*one)
    quoted = _reply(rows, 'a"b'), _reply(rows, 'c"d')  # escaped as compact JSON does
    assert reply_digest(*quoted[0]) == reply_digest(*quoted[1]) == reply_digest(*one)
    # An id not written as compact JSON writes it (here: a space after the colon)
    # leaves the whole body hashed: replies then differ, which only costs the usual work.
    spaced = [(c.replace(b'"requestId":', b'"requestId": '), b) for c, b in (one, two)]
    assert reply_digest(*spaced[0]) != reply_digest(*spaced[1])
    # An id echoed inside a row is a row's value like any other.
    echoed = _reply([company(1, Note='"requestId":"9f1c-aa"')], "9f1c-aa")
    plain = _reply([company(1, Note="")], "9f1c-aa")
    assert reply_digest(*echoed) != reply_digest(*plain)
    assert -(2**63) <= reply_digest(*one) < 2**63


COMPANIES = SourceConfig(
    name="companies",
    kind="company",
    select=("Gsid", "Name", "Arr", "ModifiedDate"),
    ignore_fields=("ModifiedDate",),
    page_size=500,
)


async def test_the_simulated_tenant_over_http_settles_its_unchanged_pages(
    tmp_path: Path,
) -> None:
    """Real replies, each with its own request id: the second sweep settles every
    page but the one with a changed row, and reports that change."""
    clock = FakeClock()
    points = _Points()
    with running_sim(
        companies=2000,
        ctas=0,
        goals=0,
        clock=clock,
        requests_per_minute=1_000_000,
        requests_per_day=100_000_000,
    ) as sim:
        async with httpx.AsyncClient(timeout=30) as http:
            client = sim_client(http, sim, clock)
            store = Store.open(tmp_path / "w.db", clock=clock)
            poller = Poller(store, client, host="127.0.0.1", clock=clock, hook=points.update_one)
            await poller.poll(COMPANIES, mode="full")
            key = sim.tenant.keys("Company")[1234]
            clock.advance(60)
            sim.tenant.update("Company", key, {"Name": "Renamed"})
            points.clear()
            second = await poller.poll(COMPANIES, mode="full")
            assert (second.updated, points["page_settled"]) == (1, 3)
            changes = [(e.cloudevent()["data"]["change"], e.subject) for e in store.list_events()]
            assert changes == [("updated", key)]
            store.close()
