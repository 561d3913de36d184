"""The tenant's state: mutations, the ground-truth change log, delete logs, the driver."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.sim.conftest import Api
from watcher.clock import FakeClock
from watcher.dates import format_utc
from watcher.sim.driver import drive_mutations
from watcher.sim.tenant import Tenant


def tenant(clock: FakeClock | None = None, **kwargs: Any) -> Tenant:
    kwargs.setdefault("companies", 40)
    kwargs.setdefault("ctas", 20)
    kwargs.setdefault("goals", 10)
    return Tenant(clock=clock or FakeClock(), **kwargs)


def test_update_logs_old_and_new_values_and_sets_modified_date() -> None:
    clock = FakeClock()
    t = tenant(clock)
    key = t.keys("Company")[0]
    before = t.get("Company", key)
    assert before is not None
    clock.advance(3600)
    change = t.update("Company", key, {"Arr": 12345.5, "Stage": "Churned"})
    churned = t.picklists.id_for("Stage", "Churned")
    assert (change.seq, change.object, change.key, change.change) == (1, "Company", key, "updated")
    assert change.time == format_utc(clock.now())
    assert change.fields["Arr"] == {"old": before["Arr"], "new": 12345.5}
    assert change.fields["Stage"] == {"old": before["Stage"], "new": churned}
    assert change.fields["ModifiedDate"]["new"] == format_utc(clock.now())
    after = t.get("Company", key)
    assert after is not None
    assert after["Stage"] == churned
    assert after["Arr"] == 12345.5
    assert t.changes() == [change]


def test_create_and_delete_are_logged_with_all_fields() -> None:
    t = tenant()
    created = t.create("call_to_action", {"Name": "Exec sponsor left", "TypeId": "Risk"})
    assert created.change == "created"
    assert created.fields["Name"] == {"old": None, "new": "Exec sponsor left"}
    assert created.fields["TypeId"]["new"] == t.picklists.id_for("CtaType", "Risk")
    assert created.key.startswith("1S01")
    assert created.key in t.keys("call_to_action")
    deleted = t.delete("call_to_action", created.key)
    assert deleted.change == "deleted"
    assert deleted.fields["Name"] == {"old": "Exec sponsor left", "new": None}
    assert created.key not in t.keys("call_to_action")
    assert [c.seq for c in t.changes()] == [1, 2]
    assert t.changes(after_seq=1) == [deleted]


def test_mutate_is_the_generic_entry_point() -> None:
    t = tenant()
    key = t.keys("cs_goal")[0]
    assert (
        t.mutate("update", "cs_goal", key, {"Status": "Completed"}).fields["StatusName"]["new"]
        == "Completed"
    )
    assert t.mutate("create", "Company").change == "created"
    assert t.mutate("deleted", "company", key=t.keys("Company")[0]).change == "deleted"
    with pytest.raises(ValueError, match="unknown mutation"):
        t.mutate("upsert", "Company")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda t: t.update("Company", "1P02NOPE", {"Name": "x"}), KeyError),
        (lambda t: t.update("Company", None, {"NoSuchField": 1}), ValueError),
        (lambda t: t.update("Company", None, {"Gsid": "x"}), ValueError),
        (lambda t: t.update("Company", None, {"Stage": "Not a stage"}), ValueError),
        (lambda t: t.update("Company", None, {"RenewalDate": "soon"}), ValueError),
        (lambda t: t.create("gsuser"), ValueError),
        (lambda t: t.delete("Company", "1P02NOPE"), KeyError),
    ],
)
def test_invalid_mutations_raise(call: Callable[[Tenant], Any], error: type[Exception]) -> None:
    t = tenant()
    with pytest.raises(error):
        call(t)
    assert t.changes() == []


def test_random_mutations_are_deterministic_per_seed() -> None:
    a, b, c = tenant(seed=9), tenant(seed=9), tenant(seed=10)
    ca, cb, cc = a.random_mutations(60), b.random_mutations(60), c.random_mutations(60)
    assert [x.to_dict() for x in ca] == [x.to_dict() for x in cb]
    assert [x.key for x in ca] != [x.key for x in cc]
    kinds = {x.change for x in ca}
    assert kinds == {"created", "updated", "deleted"}
    assert {x.object for x in ca} == {"Company", "call_to_action", "cs_goal"}


def test_change_log_replays_to_the_current_state() -> None:
    """Applying the logged changes to the initial snapshot gives the final records."""
    t = tenant()
    snapshot = {k: t.get("Company", k) for k in t.keys("Company")}
    from watcher.sim.schema import SCHEMAS
    from watcher.sim.tenant import _truth

    schema = SCHEMAS["Company"]
    state = {
        k: {f: _truth(schema.field(f), v) for f, v in (r or {}).items()}
        for k, r in snapshot.items()
    }
    for change in t.random_mutations(150):
        if change.object != "Company":
            continue
        if change.change == "deleted":
            del state[change.key]
        else:
            record = state.setdefault(change.key, {})
            record.update({f: v["new"] for f, v in change.fields.items()})
    final = {
        k: {f: _truth(schema.field(f), v) for f, v in (t.get("Company", k) or {}).items()}
        for k in t.keys("Company")
    }
    assert state == final


def test_updates_to_random_fields_keep_derived_fields_consistent() -> None:
    t = tenant(companies=5, ctas=30, goals=30)
    for change in t.random_mutations(200):
        record = t.get(change.object, change.key)
        if record is None:
            continue
        if change.object == "Company":
            assert record["Mrr"] == round(record["Arr"] / 12, 2)
        elif change.object == "call_to_action":
            closed = t.picklists.label(record["StatusId"]) in ("Closed Success", "Closed Lost")
            assert record["IsClosed"] is closed
        else:
            assert record["StatusName"] == t.picklists.label(record["Status"])


def test_delete_log_rows_and_15_day_purge(make_api: Callable[..., Api], clock: FakeClock) -> None:
    api = make_api(companies=20, ctas=10, goals=5)
    t = api.sim.tenant
    company, cta = t.keys("Company")[0], t.keys("call_to_action")[0]
    t.delete("Company", company)
    clock.advance(10 * 86_400)
    t.delete("call_to_action", cta)
    select = {"select": ["RecordId", "DeletedOn", "ObjectName"], "orderBy": {"DeletedOn": "asc"}}
    rows = api.records("record_delete_log", select)
    assert [(r["RecordId"], r["ObjectName"]) for r in rows] == [
        (company, "Company"),
        (cta, "call_to_action"),
    ]
    assert all(r["DeletedOn"].endswith("Z") for r in rows)  # ISO like the doc sample
    only_company = {
        **select,
        "where": {
            "conditions": [
                {"name": "ObjectName", "alias": "A", "operator": "EQ", "value": ["Company"]},
                {
                    "name": "DeletedOn",
                    "alias": "B",
                    "operator": "GT",
                    "value": ["2026-11-01 00:00:00"],
                },
            ],
            "expression": "A AND B",
        },
    }
    assert [r["RecordId"] for r in api.records("record_delete_log", only_company)] == [company]
    deleted_list = "/v2/cockpit/cta/deleted/list"
    assert [r["Gsid"] for r in api.ctas({"pageSize": 10}, path=deleted_list)] == [cta]
    clock.advance(6 * 86_400)  # the company's row is now 16 days old, the CTA's 6
    assert [r["RecordId"] for r in api.records("record_delete_log", select)] == [cta]
    clock.advance(10 * 86_400)
    assert api.records("record_delete_log", select) == []
    assert api.ctas({"pageSize": 10}, path=deleted_list) == []


def test_driver_applies_mutations_at_the_rate_on_the_clock() -> None:
    clock = FakeClock()
    t = tenant(clock)
    start = clock.now()
    made = asyncio.run(drive_mutations(t, 30, count=12))
    assert made == 12 == len(t.changes())
    assert (clock.now() - start).total_seconds() == pytest.approx(24.0)
    assert clock.slept == [2.0] * 12


def test_driver_stops_when_told() -> None:
    t = tenant()
    stop = asyncio.Event()
    stop.set()
    assert asyncio.run(drive_mutations(t, 60, stop=stop)) == 0
    with pytest.raises(ValueError):
        asyncio.run(drive_mutations(t, 0))


def test_mutations_are_visible_over_http_with_modified_date_from_the_clock(
    make_api: Callable[..., Api], clock: FakeClock
) -> None:
    api = make_api(companies=10, ctas=0, goals=0)
    key = api.sim.tenant.keys("Company")[3]
    clock.advance(120)
    api.sim.tenant.update("Company", key, {"Employees": 77})
    body = {
        "select": ["Gsid", "Employees", "ModifiedDate"],
        "where": {
            "conditions": [
                {
                    "name": "ModifiedDate",
                    "alias": "A",
                    "operator": "GTE",
                    "value": [format_utc(clock.now())],
                }
            ]
        },
    }
    rows = api.records("Company", body)
    assert rows == [
        {"Gsid": key, "Employees": 77, "ModifiedDate": int(clock.now().timestamp() * 1000)}
    ]


def test_serving_while_another_thread_mutates(make_api: Callable[..., Api]) -> None:
    """Pages stay valid while a test thread mutates the tenant (the tenant lock)."""
    import threading

    api = make_api(companies=400, ctas=50, goals=10, requests_per_minute=10**6)
    made: list[int] = []

    def churn() -> None:
        # A bounded burst per round of requests, no sleep: the tenant lock is not fair,
        # and an endless loop that took it back at once starved the server past its
        # read timeout on a slow machine.
        for _ in range(100):
            api.sim.tenant.random_mutations(5)
            made.append(5)

    body = {
        "select": ["Gsid", "ModifiedDate", "Csm__gr.Name"],
        "where": {"conditions": [{"name": "Arr", "alias": "A", "operator": "GT", "value": [0]}]},
        "orderBy": {"ModifiedDate": "desc"},
        "limit": 100,
    }
    for offset in range(0, 400, 100):
        thread = threading.Thread(target=churn)
        thread.start()
        try:
            assert api.query("Company", {**body, "offset": offset}).status_code == 200
            assert api.post("/v2/cockpit/cta/list", {"pageSize": 20}).status_code == 200
            assert api.http.get("/__sim/changes").status_code == 200
        finally:
            thread.join()
    assert made
