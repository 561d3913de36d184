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
from watcher.store import PageCommit, Store
from watcher.store.store import Write
from watcher.store.sweep_pages import SweepPage, keys_digest, pack_fingerprints
from watcher.testing.sim import running_sim


def _key(i: int) -> str:
    return str(company(i)["Gsid"])


class _Points(Counter[str]):
    def update_one(self, point: str) -> None:
        self[point] += 1


def _counting(tmp_path: Path, n: int = 40) -> tuple[Harness, _Points]:
    points = _Points()
    return Harness(tmp_path / "w.db", tenant(n), hook=points.update_one), points


def _hints(store: Store) -> list[tuple[str, str, int]]:
    rows = store.conn.execute(
        "SELECT after, last, count FROM sweep_pages WHERE source = 'companies' ORDER BY after"
    ).fetchall()
    return [tuple(r) for r in rows]


async def test_an_unchanged_tenant_is_settled_page_by_page_without_reading_rows(
    tmp_path: Path,
) -> None:
    h, points = _counting(tmp_path)
    src = source_config()
    await h.poller.poll(src)  # the baseline reads every page and leaves a hint for each
    assert _hints(h.store) == [
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
    """The tenant answers the very same page, but a snapshot of its window was written
    since the hint was kept (the fast lane, an incremental poll): that commit dropped
    the window's hint, so the page is read the usual way and the stored value is
    reported back to the tenant's."""
    h, points = _counting(tmp_path)
    src = source_config()
    await h.poller.poll(src)
    key = _key(12)
    h.store.commit("companies", PageCommit(writes=[(key, 1, company(12, Arr=7.0))]))
    assert _key(9) not in [after for after, _, _ in _hints(h.store)]  # window 2's hint is gone
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
    h.store.commit("companies", PageCommit(deletes=[_key(31)]))
    points.clear()

    result = await h.poller.poll(src)

    assert (result.created, points["page_settled"]) == (1, 3)
    assert h.store.count_snapshots("companies") == 40


async def test_a_changed_page_takes_its_stored_fingerprints_from_the_hint(
    tmp_path: Path,
) -> None:
    """Another reply with the same keys in the same order: the window's fingerprints
    come from its hint, and only the changed record's stored body is read."""
    h, points = _counting(tmp_path)
    src = source_config()
    await h.poller.poll(src)
    h.feed.records[_key(15)] = company(15, Arr=2.0)
    reads: list[str] = []
    h.store.conn.set_trace_callback(reads.append)

    result = await h.poller.poll(src)

    h.store.conn.set_trace_callback(None)
    assert (result.updated, points["page_settled"]) == (1, 3)
    assert not [s for s in reads if s.startswith(("SELECT fp FROM", "SELECT key, fp FROM"))]
    bodies = [s for s in reads if s.startswith("SELECT key, body")]
    assert len(bodies) == 1
    assert _key(15) in bodies[0]
    assert h.changes() == [("updated", _key(15))]


def _hint_for(after: str, last: str, prints: dict[str, int], version: int) -> SweepPage:
    return SweepPage(
        after=after,
        last=last,
        count=len(prints),
        fp_sum=sum(prints.values()),
        digest=1,
        top=None,
        keys=keys_digest(prints),
        fps=pack_fingerprints(prints.values()),
        read_version=version,
    )


def test_a_hint_is_checked_again_when_another_connection_wrote_since_the_read(
    tmp_path: Path,
) -> None:
    """Another process committed between the read of a window and the commit of its
    page: the window is counted and summed again, and the hint is kept only if the
    stored window is still the page's."""
    path = tmp_path / "w.db"
    mine, theirs = Store.open(path, clock=FakeClock()), Store.open(path, clock=FakeClock())
    prints = {"K1": 11, "K2": 12, "K3": 13}
    page = PageCommit(writes=[(k, fp, {"Gsid": k}) for k, fp in prints.items()])
    mine.commit("companies", page)

    version = mine.data_version()
    theirs.commit("companies", PageCommit(writes=[("K9", 19, {"Gsid": "K9"})]))  # elsewhere
    mine.commit("companies", PageCommit(sweep_page=_hint_for("", "K3", prints, version)))
    assert mine.sweep_page("companies", "") is not None  # the window still matches

    version = mine.data_version()
    theirs.commit("companies", PageCommit(writes=[("K2", 99, {"Gsid": "K2", "Arr": 1})]))
    mine.commit("companies", PageCommit(sweep_page=_hint_for("", "K3", prints, version)))
    assert mine.sweep_page("companies", "") is None  # K2 changed in between: no hint
    mine.close()
    theirs.close()


def test_a_write_drops_only_the_hint_whose_window_holds_the_key(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "w.db", clock=FakeClock())
    windows = [("", "K2", {"K1": 1, "K2": 2}), ("K2", "K4", {"K3": 3, "K4": 4})]
    for after, last, prints in windows:
        writes: list[Write] = [(k, fp, {"Gsid": k}) for k, fp in prints.items()]
        hint = _hint_for(after, last, prints, store.data_version())
        store.commit("companies", PageCommit(writes=writes, sweep_page=hint))
    assert [row[0] for row in _hints(store)] == ["", "K2"]
    store.commit("companies", PageCommit(writes=[("K3", 33, {"Gsid": "K3"})]))
    assert [row[0] for row in _hints(store)] == [""]
    store.commit("companies", PageCommit(writes=[("K5", 5, {"Gsid": "K5"})]))  # past them all
    store.commit("other", PageCommit(deletes=["K1"]))  # another source
    assert [row[0] for row in _hints(store)] == [""]
    store.commit("companies", PageCommit(deletes=["K1"]))
    assert _hints(store) == []
    store.close()


def test_a_page_drops_exactly_the_hints_its_window_overlaps(tmp_path: Path) -> None:
    """Windows K0-K2, K2-K4, K4-K6, K6-K8 stored; a page now reads (K3, K7]: the rows
    starting inside it go, and the one starting before it that reaches into it; the
    row ending where it starts and the rows past it stay. Its own row is written."""
    store = Store.open(tmp_path / "w.db", clock=FakeClock())
    prints = {f"K{i}": i for i in range(1, 10)}
    store.commit("companies", PageCommit(writes=[(k, fp, {"Gsid": k}) for k, fp in prints.items()]))
    for after, last in [("K0", "K2"), ("K2", "K3"), ("K3", "K4"), ("K4", "K6"), ("K6", "K8"),
                        ("K8", "K9")]:  # fmt: skip
        window = {k: fp for k, fp in prints.items() if after < k <= last}
        store.commit("companies", PageCommit(sweep_page=_hint_for(after, last, window, 0)))
    store.commit("other", PageCommit(sweep_page=_hint_for("K4", "K6", {}, 0)))
    assert [row[0] for row in _hints(store)] == ["K0", "K2", "K3", "K4", "K6", "K8"]

    window = {k: fp for k, fp in prints.items() if "K3" < k <= "K7"}
    store.commit("companies", PageCommit(sweep_page=_hint_for("K3", "K7", window, 0)))

    assert [row[:2] for row in _hints(store)] == [
        ("K0", "K2"), ("K2", "K3"), ("K3", "K7"), ("K8", "K9"),
    ]  # fmt: skip
    window = {k: fp for k, fp in prints.items() if "K2" < k <= "K5"}
    store.commit("companies", PageCommit(sweep_page=_hint_for("K2", "K5", window, 0)))
    assert [row[:2] for row in _hints(store)] == [("K0", "K2"), ("K2", "K5"), ("K8", "K9")]
    window = {k: fp for k, fp in prints.items() if "K3" < k <= "K8"}
    store.commit("companies", PageCommit(sweep_page=_hint_for("K3", "K8", window, 0)))
    assert [row[:2] for row in _hints(store)] == [("K0", "K2"), ("K3", "K8"), ("K8", "K9")]
    assert store.sweep_page("other", "K4") is not None  # another source's rows stay
    store.close()


async def test_a_deleted_row_is_found_and_the_hints_follow_the_moved_windows(
    tmp_path: Path,
) -> None:
    """Deleting a row moves every later row one place up: the pages after it differ
    from the hints, are read the usual way, and the hints of windows no sweep has any
    more are dropped. The window that lost the row gets its hint from the next sweep
    (its snapshot is deleted only after the pages, which drops any hint over it)."""
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
    assert _hints(h.store) == [
        ("", _key(9), 10),
        (_key(20), _key(30), 10),
        (_key(30), _key(39), 9),
    ]
    points.clear()
    await h.poller.poll(src)
    assert points["page_settled"] == 3
    assert (_key(9), _key(20), 10) in _hints(h.store)
    points.clear()
    await h.poller.poll(src)
    assert points["page_settled"] == 4


async def test_pages_without_a_digest_leave_no_hint(tmp_path: Path) -> None:
    h, points = _counting(tmp_path)
    h.feed.digests = False
    src = source_config()
    await h.poller.poll(src)
    await h.poller.poll(src)
    assert (_hints(h.store), points["page_settled"]) == ([], 0)


async def test_a_dry_run_neither_settles_nor_leaves_hints(tmp_path: Path) -> None:
    h, points = _counting(tmp_path)
    src = source_config()
    await h.poller.poll(src, dry_run=True)
    assert _hints(h.store) == []
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


def test_a_keys_digest_tells_apart_keys_that_join_to_the_same_text() -> None:
    assert keys_digest(["a\x00b", "c"]) != keys_digest(["a", "b\x00c"])
    assert keys_digest(["a", "b"]) == keys_digest({"a": 1, "b": 2}.keys())
    assert keys_digest(["a", "b"]) != keys_digest(["b", "a"])
    assert -(2**63) <= keys_digest(["\ud800"]) < 2**63  # any text, even a lone surrogate
