"""``watcher sim --strict-docs``: the Cockpit routes accept only what Gainsight documents."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from watcher.clock import FakeClock
from watcher.testing.sim import running_sim


def post(sim: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(sim.base_url + path, json=body, headers=sim.headers, timeout=10)


def where(*conds: dict[str, Any]) -> dict[str, Any]:
    return {"conditions": list(conds), "expression": " AND ".join(c["alias"] for c in conds)}


@pytest.mark.parametrize(
    ("cond", "desc"),
    [
        (
            {"fieldName": "Gsid", "alias": "A", "operator": "GTE", "value": ["1S01"]},
            "Invalid operator GTE for Gsid",
        ),
        (
            {"fieldName": "Gsid", "alias": "A", "operator": "IN", "value": ["1S01"]},
            "Invalid operator IN for Gsid",
        ),
        (
            {
                "fieldName": "ModifiedDate",
                "alias": "A",
                "operator": "BTW",
                "value": ["2026-11-01T00:00:00+00:00", "2026-11-02"],
            },
            "Invalid date value 2026-11-01T00:00:00+00:00 for ModifiedDate",
        ),
    ],
)
def test_strict_cockpit_list_refuses_undocumented_requests(cond: dict[str, Any], desc: str) -> None:
    with running_sim(companies=3, ctas=5, clock=FakeClock(), strict_docs=True) as sim:
        reply = post(sim, "/v2/cockpit/cta/list", {"where": where(cond), "pageSize": 10})
        lenient = sim.tenant.options
        lenient.strict_docs = False
        accepted = post(sim, "/v2/cockpit/cta/list", {"where": where(cond), "pageSize": 10})
    assert reply.status_code == 400
    body = reply.json()
    assert body["errorCode"] == "COCKPIT_5102"
    assert body["errorDesc"] == desc
    assert accepted.status_code == 200


def test_strict_cockpit_list_accepts_the_documented_forms() -> None:
    conds: list[dict[str, Any]] = [
        {"fieldName": "ModifiedDate", "alias": "A", "operator": "BTW",
         "value": ["2020-01-01", "2099-01-01"]},
        {"fieldName": "DueDate", "alias": "B", "operator": "IS_NOT_NULL"},
    ]  # fmt: skip
    with running_sim(companies=3, ctas=5, clock=FakeClock(), strict_docs=True) as sim:
        reply = post(sim, "/v2/cockpit/cta/list", {"where": where(*conds), "pageSize": 10})
        today = post(
            sim,
            "/v2/cockpit/cta/list",
            {"where": where({"fieldName": "ModifiedDate", "alias": "A", "operator": "EQ",
                             "literal": "TODAY"}), "pageSize": 10},
        )  # fmt: skip
    assert reply.status_code == 200
    assert len(reply.json()["data"]) == 5
    assert today.status_code == 200


def test_strict_tenant_has_no_guessed_goals_route_but_serves_goals_by_query() -> None:
    with running_sim(companies=3, goals=4, clock=FakeClock(), strict_docs=True) as sim:
        guessed = post(sim, "/v1/csgoal/external/list", {"select": ["Gsid"]})
        query = post(sim, "/v1/data/objects/query/cs_goal", {"select": ["Gsid"], "limit": 10})
    assert guessed.status_code == 404
    assert guessed.json()["errorCode"] == "GS_APIG_1000"
    assert len(query.json()["data"]["records"]) == 4


def test_metadata_routes_list_objects_and_describe_fields() -> None:
    with running_sim(companies=3, clock=FakeClock(), strict_docs=True) as sim:
        objects = httpx.get(
            sim.base_url + "/v1/meta/services/objects/list", headers=sim.headers, timeout=10
        ).json()["data"]
        described = httpx.get(
            sim.base_url + "/v1/meta/services/objects/call_to_action/describe?idd=true",
            headers=sim.headers,
            timeout=10,
        ).json()["data"]
    labels = {o["objectName"]: o["label"] for o in objects}
    assert labels["cs_goal"] == "Customer Goals"
    fields = {f["fieldName"]: f for f in described[0]["fields"]}
    assert fields["CompanyId"]["lookupDetail"]["lookupObjects"][0]["objectName"] == "Company"
    assert fields["StatusId"]["dataType"] == "PICKLIST"


def test_setting_a_cta_status_keeps_is_closed_consistent() -> None:
    with running_sim(companies=3, ctas=3, clock=FakeClock()) as sim:
        key = sim.tenant.keys("call_to_action")[0]
        sim.tenant.update("call_to_action", key, {"StatusId": "Closed Success"})
        closed = sim.tenant.get("call_to_action", key)
        sim.tenant.update("call_to_action", key, {"StatusId": "Work In Progress"})
        reopened = sim.tenant.get("call_to_action", key)
    assert closed is not None
    assert closed["IsClosed"] is True
    assert reopened is not None
    assert reopened["IsClosed"] is False
