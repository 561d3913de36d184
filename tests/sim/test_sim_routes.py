"""Routes, auth and the envelope of the simulated tenant, over loopback HTTP."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.sim.conftest import Api

ENVELOPE_KEYS = {"result", "errorCode", "errorDesc", "requestId", "data", "message"}


def assert_envelope(reply: httpx.Response) -> dict[str, object]:
    body = reply.json()
    assert set(body) >= ENVELOPE_KEYS, body
    uuid.UUID(str(body["requestId"]))
    assert reply.headers["x-gs-request-id"] == body["requestId"]
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize("header", ["Accesskey", "accesskey", "AccessKey", "ACCESSKEY"])
def test_access_key_header_name_is_case_insensitive(api: Api, header: str) -> None:
    """Clients vary the header's casing; every casing authenticates."""
    reply = httpx.post(
        f"{api.sim.base_url}/v1/data/objects/query/Company",
        json={"select": ["Gsid"], "limit": 1},
        headers={header: "sim-key"},
    )
    assert reply.status_code == 200
    assert assert_envelope(reply)["result"] is True


@pytest.mark.parametrize("headers", [{}, {"Accesskey": "wrong"}, {"Accesskey": ""}])
def test_missing_or_wrong_key_is_401_gs_apig_2401(api: Api, headers: dict[str, str]) -> None:
    """No key or a wrong key: HTTP 401 with the documented envelope, on data and admin routes."""
    for path in ("/v1/data/objects/query/Company", "/v2/cockpit/cta/list", "/__sim/changes"):
        reply = httpx.post(f"{api.sim.base_url}{path}", json={"select": ["Gsid"]}, headers=headers)
        assert reply.status_code == 401
        body = assert_envelope(reply)
        assert body["result"] is False
        assert body["errorCode"] == "GS_APIG_2401"
        assert body["errorDesc"] == "Unauthorized"


def test_key_is_never_echoed(api: Api) -> None:
    """A wrong key is not reflected in the error reply."""
    reply = httpx.post(f"{api.sim.base_url}/v2/cockpit/cta/list", headers={"Accesskey": "s3cr3t"})
    assert "s3cr3t" not in reply.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/data/objects/nope"),
        ("GET", "/v1/data/objects/query/Company"),
        ("POST", "/v3/cockpit/cta/list"),
        ("DELETE", "/v2/cockpit/cta/list"),
        ("POST", "/"),
    ],
)
def test_unknown_route_is_404_gs_apig_1000(api: Api, method: str, path: str) -> None:
    """Unknown paths and wrong methods answer 404 GS_APIG_1000 inside the envelope."""
    reply = api.http.request(method, path, json={})
    assert reply.status_code == 404
    body = assert_envelope(reply)
    assert (body["result"], body["errorCode"]) == (False, "GS_APIG_1000")


@pytest.mark.parametrize("name", ["Company", "company", "COMPANY", "call_to_action", "CS_GOAL"])
def test_object_names_are_case_insensitive(api: Api, name: str) -> None:
    """The MDA path matches object names regardless of case (DOMO queries `person`)."""
    rows = api.records(name, {"select": ["Gsid"], "limit": 5})
    assert len(rows) == 5


def test_unknown_object_is_object_not_found(api: Api) -> None:
    reply = api.query("Nonexistent__c", {"select": ["Gsid"]})
    assert reply.status_code == 400
    body = assert_envelope(reply)
    assert (body["errorCode"], body["errorDesc"]) == (
        "OBJECT_NOT_FOUND",
        "Requested object not found.",
    )


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"text"'])
def test_body_that_is_not_a_json_object_is_400(api: Api, content: bytes) -> None:
    reply = api.http.post("/v1/data/objects/query/Company", content=content)
    assert reply.status_code == 400
    assert assert_envelope(reply)["errorCode"] == "GSOBJ_1008"


def test_every_data_route_answers_with_the_envelope(api: Api) -> None:
    """Company, CTA list, CTA deleted list, goals, delete log, timeline and objects list."""
    replies = [
        api.query("Company", {"select": ["Gsid"], "limit": 2}),
        api.query("record_delete_log", {"select": ["RecordId", "DeletedOn", "ObjectName"]}),
        api.query("activity_timeline", {"select": ["Gsid", "Subject"], "limit": 2}),
        api.post("/v2/cockpit/cta/list", {"pageSize": 2, "pageNumber": 1}),
        api.post("/v2/cockpit/cta/deleted/list", {"pageSize": 2, "pageNumber": 1}),
        api.post("/v1/csgoal/external/list", {"pageSize": 2, "pageNumber": 1}),
        api.http.get("/v1/meta/services/objects/list"),
    ]
    for reply in replies:
        assert reply.status_code == 200, reply.text
        assert assert_envelope(reply)["result"] is True
    objects = replies[-1].json()["data"]
    assert {"Company", "call_to_action", "cs_goal"} <= {o["objectName"] for o in objects}


def test_request_ids_are_unique(api: Api) -> None:
    ids = {
        api.query("Company", {"select": ["Gsid"], "limit": 1}).json()["requestId"] for _ in range(5)
    }
    assert len(ids) == 5


def test_asgi_app_works_in_process(api: Api) -> None:
    """`sim.app` serves the same tenant through httpx.ASGITransport."""
    import asyncio

    async def go() -> list[str]:
        transport = httpx.ASGITransport(app=api.sim.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            reply = await client.post(
                "/v1/data/objects/query/Company",
                json={"select": ["Gsid"], "limit": 3},
                headers={"accesskey": "sim-key"},
            )
            return [r["Gsid"] for r in reply.json()["data"]["records"]]

    assert asyncio.run(go()) == api.sim.tenant.keys("Company")[:3]


def test_gsids_have_type_prefixes_and_36_uppercase_chars(api: Api) -> None:
    company = api.records(
        "Company", {"select": ["Gsid", "Csm", "Stage", "Status", "Arr", "Mrr"], "limit": 50}
    )
    cta = api.ctas({"select": ["Gsid", "TypeId", "StatusId", "OwnerId", "IsClosed"], "pageSize": 5})
    goals = api.ctas({"select": ["Gsid"], "pageSize": 5}, path="/v1/csgoal/external/list")

    def ok(value: object, prefix: str) -> bool:
        text = str(value)
        return len(text) == 36 and text.startswith(prefix) and text.isalnum() and text.isupper()

    assert all(ok(r["Gsid"], "1P02") for r in company)
    assert all(ok(r["Stage"], "1I00") and ok(r["Status"], "1I00") for r in company)
    assert all(r["Csm"] is None or ok(r["Csm"], "1P01") for r in company)
    assert all(isinstance(r["Arr"], float) and isinstance(r["Mrr"], float) for r in company)
    assert all(ok(r["Gsid"], "1S01") and ok(r["TypeId"], "1I00") for r in cta)
    assert all(ok(r["OwnerId"], "1P01") and isinstance(r["IsClosed"], bool) for r in cta)
    assert all(ok(r["Gsid"], "1S05") for r in goals)


def test_same_seed_same_data_other_seed_other_data() -> None:
    """Data is a pure function of (seed, clock time)."""
    from watcher.clock import FakeClock
    from watcher.sim.tenant import Tenant

    clock = FakeClock()
    a = Tenant(companies=30, seed=5, clock=clock)
    b = Tenant(companies=30, seed=5, clock=clock)
    c = Tenant(companies=30, seed=6, clock=clock)
    assert a.keys("Company") == b.keys("Company") != c.keys("Company")
    assert a.get("Company", a.keys("Company")[0]) == b.get("Company", b.keys("Company")[0])


def test_an_internal_error_still_answers_with_the_envelope(api: Api) -> None:
    """A simulator bug (here: a broken goals path setting) is a 500 GU_1101 envelope."""
    api.sim.tenant.options.goals_path = None  # type: ignore[assignment]
    reply = api.post("/v2/cockpit/nothing", {})
    assert reply.status_code == 500
    assert assert_envelope(reply)["errorCode"] == "GU_1101"
