"""Cockpit-style lists: `POST /v2/cockpit/cta/list`, the deleted list and the goals route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.sim.conftest import Api
from watcher.clock import FakeClock
from watcher.dates import to_epoch_ms
from watcher.sim.data import DAY_MS

CTA_LIST = "/v2/cockpit/cta/list"
GOALS = "/v1/csgoal/external/list"


def fcond(field: str, op: str, *values: Any, alias: str = "A") -> dict[str, Any]:
    return {"fieldName": field, "alias": alias, "operator": op, "value": list(values)}


def all_pages(api: Api, body: dict[str, Any], path: str = CTA_LIST, size: int = 7) -> list[str]:
    seen: list[str] = []
    number = 1
    while True:
        page = api.ctas({**body, "pageSize": size, "pageNumber": number}, path=path)
        seen += [r["Gsid"] for r in page]
        if len(page) < size:
            return seen
        number += 1


def test_pages_are_one_based_and_cover_every_cta_once(api: Api) -> None:
    assert all_pages(api, {"select": ["Name"]}) == api.sim.tenant.keys("call_to_action")
    first = api.ctas({"pageSize": 5, "pageNumber": 1})
    assert [r["Gsid"] for r in first] == api.sim.tenant.keys("call_to_action")[:5]


def test_data_is_a_bare_array_with_selected_fields_plus_gsid(api: Api) -> None:
    body = api.post(
        CTA_LIST, {"select": ["name", "CompanyId__gr.Name", "TypeId__gr.Name"], "pageSize": 3}
    ).json()
    assert isinstance(body["data"], list)
    # select is case-insensitive; plain names come back canonical, lookups verbatim
    assert [set(r) for r in body["data"]] == [
        {"Gsid", "Name", "CompanyId__gr.Name", "TypeId__gr.Name"}
    ] * 3


def test_default_fields_when_select_is_empty_or_switched_on(api: Api) -> None:
    row = api.ctas({"pageSize": 1})[0]
    assert {
        "Gsid",
        "Name",
        "CompanyId",
        "CompanyId__gr.Name",
        "TypeId__gr.Name",
        "IsClosed",
    } <= set(row)
    api.sim.tenant.options.cockpit_default_fields = True
    row = api.ctas({"select": ["Comments"], "pageSize": 1})[0]
    assert {"Comments", "StatusId__gr.Name", "DueDate", "ModifiedDate"} <= set(row)


def test_bad_select_is_cockpit_5101(api: Api) -> None:
    reply = api.post(CTA_LIST, {"select": ["Name", "gsidasdf"], "pageSize": 1})
    body = reply.json()
    assert reply.status_code == 400
    assert body["errorCode"] == "COCKPIT_5101"
    assert body["errorDesc"] == "Invalid fields in select clause - gsidasdf"
    assert body["data"] == {}


def test_field_name_conditions_filter_by_type_label(api: Api) -> None:
    tenant = api.sim.tenant
    risk = tenant.picklists.id_for("CtaType", "Risk")
    expected = [
        k
        for k in tenant.keys("call_to_action")
        if (tenant.get("call_to_action", k) or {})["TypeId"] == risk
    ]
    got = all_pages(api, {"where": {"conditions": [fcond("TypeId__gr.Name", "EQ", "Risk")]}})
    assert got == expected
    assert expected


def test_mda_style_name_key_is_rejected_on_cockpit(api: Api) -> None:
    reply = api.post(
        CTA_LIST,
        {
            "where": {
                "conditions": [
                    {"name": "IsClosed", "alias": "A", "operator": "EQ", "value": [True]}
                ]
            }
        },
    )
    assert reply.status_code == 400
    assert "fieldName" in reply.json()["errorDesc"]


def test_literal_today_on_dates(make_api: Callable[..., Api], clock: FakeClock) -> None:
    api = make_api(companies=10, ctas=40, goals=0)
    tenant = api.sim.tenant
    keys = tenant.keys("call_to_action")[:3]
    clock.advance(2 * 86_400)  # the seeded data was all modified before "today"
    for key in keys:
        tenant.update("call_to_action", key, {"Name": "touched today"})
    today = {"fieldName": "ModifiedDate", "literal": "TODAY", "alias": "A", "operator": "EQ"}
    assert sorted(all_pages(api, {"where": {"conditions": [today]}})) == sorted(keys)
    due = {"fieldName": "DueDate", "literal": "TODAY", "alias": "A", "operator": "GTE"}
    midnight = to_epoch_ms(clock.now()) // DAY_MS * DAY_MS
    expected = [
        k
        for k in tenant.keys("call_to_action")
        if (tenant.get("call_to_action", k) or {})["DueDate"] >= midnight
    ]
    assert all_pages(api, {"where": {"conditions": [due]}}) == expected
    clock.advance(86_400)
    assert all_pages(api, {"where": {"conditions": [today]}}) == []
    bad = {"fieldName": "Name", "literal": "TODAY", "alias": "A", "operator": "EQ"}
    assert api.post(CTA_LIST, {"where": {"conditions": [bad]}}).status_code == 400


@pytest.mark.parametrize(("size", "number"), [(0, 1), (10, 0), (1001, 1), ("5", 1)])
def test_bad_page_size_or_number_is_400(api: Api, size: Any, number: Any) -> None:
    assert api.post(CTA_LIST, {"pageSize": size, "pageNumber": number}).status_code == 400


def test_page_size_over_1000_is_clamped_when_switched(make_api: Callable[..., Api]) -> None:
    api = make_api(companies=5, ctas=1200, goals=0, over_limit="clamp")
    assert len(api.ctas({"pageSize": 5000, "pageNumber": 1})) == 1000


def test_unstable_order_makes_paging_skip_and_repeat(make_api: Callable[..., Api]) -> None:
    """With the switch on, each page request sees a fresh order: a naive page loop sees
    duplicates and misses CTAs; every page is still a valid subset."""
    api = make_api(companies=5, ctas=200, goals=0, cockpit_unstable_order=True)
    seen = all_pages(api, {"select": ["Name"]}, size=20)
    truth = api.sim.tenant.keys("call_to_action")
    assert len(seen) == 200
    assert set(seen) <= set(truth)
    assert len(set(seen)) < 200  # duplicates, hence misses


def test_goals_route_pages_like_cockpit(api: Api) -> None:
    assert all_pages(api, {}, path=GOALS, size=5) == api.sim.tenant.keys("cs_goal")
    row = api.ctas({"pageSize": 1}, path=GOALS)[0]
    assert {
        "Gsid",
        "Name",
        "Description",
        "StatusName",
        "DueDate",
        "EntityType",
        "CompanyId",
        "ModifiedDate",
    } <= set(row)
    status = api.ctas({"select": ["Status__gr.Name", "StatusName"], "pageSize": 5}, path=GOALS)
    assert all(r["Status__gr.Name"] == r["StatusName"] for r in status)


def test_goals_path_is_configurable(make_api: Callable[..., Api]) -> None:
    api = make_api(companies=5, ctas=0, goals=3, goals_path="/v1/csgoal/external/fetch")
    assert len(api.ctas({"pageSize": 10}, path="/v1/csgoal/external/fetch")) == 3
    assert api.post(GOALS, {"pageSize": 10}).status_code == 404


def test_cta_dates_are_iso(api: Api) -> None:
    row = api.ctas({"select": ["DueDate", "ModifiedDate"], "pageSize": 1})[0]
    assert len(row["DueDate"]) == 10
    assert row["ModifiedDate"].endswith("Z")


def test_deleted_ctas_on_both_routes(api: Api) -> None:
    tenant = api.sim.tenant
    gone = tenant.keys("call_to_action")[:3]
    for key in gone:
        tenant.delete("call_to_action", key)
    assert not set(gone) & set(all_pages(api, {}))
    for path, extra in (
        ("/v2/cockpit/cta/deleted/list", {}),
        (CTA_LIST, {"includeonlyDeletedRecords": True}),
    ):
        reply = api.post(path, {"select": ["Name"], "pageSize": 100, "pageNumber": 1, **extra})
        body = reply.json()
        assert [r["Gsid"] for r in body["data"]] == gone
        assert (body["pageSize"], body["currentPageNum"]) == (100, 1)


def test_goals_route_ignores_the_deleted_cta_switch(api: Api) -> None:
    api.sim.tenant.delete("call_to_action")
    rows = api.ctas({"pageSize": 100, "includeonlyDeletedRecords": True}, path=GOALS)
    assert [r["Gsid"] for r in rows] == api.sim.tenant.keys("cs_goal")
