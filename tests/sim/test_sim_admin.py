"""The admin HTTP API under /__sim/ (same access key; envelope replies)."""

from __future__ import annotations

from collections.abc import Callable

from tests.sim.conftest import Api
from watcher.clock import FakeClock
from watcher.testing.sim import running_sim


def test_mutate_explicit_ops_and_read_the_change_log(api: Api) -> None:
    key = api.sim.tenant.keys("Company")[0]
    reply = api.post(
        "/__sim/mutate",
        {
            "ops": [
                {"op": "update", "object": "Company", "key": key, "fields": {"Employees": 5}},
                {"op": "create", "object": "call_to_action", "fields": {"Name": "New risk"}},
                {"op": "delete", "object": "cs_goal"},
            ]
        },
    )
    assert reply.status_code == 200
    changes = reply.json()["data"]["changes"]
    assert [c["change"] for c in changes] == ["updated", "created", "deleted"]
    assert changes[0]["fields"]["Employees"]["new"] == 5
    log = api.http.get("/__sim/changes", params={"after": 1}).json()["data"]
    assert log["last_seq"] == 3
    assert [c["seq"] for c in log["changes"]] == [2, 3]
    assert log["changes"] == changes[1:]
    assert api.sim.tenant.get("Company", key)["Employees"] == 5  # type: ignore[index]


def test_mutate_random_is_deterministic(make_api: Callable[..., Api]) -> None:
    runs = []
    for _ in range(2):
        api = make_api(companies=30, ctas=10, goals=5, seed=11)
        runs.append(api.post("/__sim/mutate", {"random": 25}).json()["data"]["changes"])
    assert runs[0] == runs[1]
    assert len(runs[0]) == 25


def test_mutate_rejects_bad_requests(api: Api) -> None:
    for body in (
        {"random": -1},
        {"ops": "x"},
        {},
        {"ops": [{"op": "update", "object": "Company", "fields": {"Nope": 1}}]},
        {"ops": [{"op": "explode", "object": "Company"}]},
        {"ops": [1]},
    ):
        reply = api.post("/__sim/mutate", body)
        assert reply.status_code == 400, body
        assert reply.json()["errorCode"] == "SIM_BAD_REQUEST"
    assert api.http.post("/__sim/mutate", content=b"nope").status_code == 400
    missing = api.post(
        "/__sim/mutate", {"ops": [{"op": "delete", "object": "Company", "key": "X"}]}
    )
    assert missing.status_code == 404
    assert api.http.get("/__sim/changes", params={"after": "x"}).status_code == 400


def test_options_and_faults_are_settable(api: Api) -> None:
    reply = api.post(
        "/__sim/options",
        {
            "options": {"empty_form": "gsobj_1011", "requests_per_minute": 7},
            "faults": {"script": ["error"]},
        },
    )
    data = reply.json()["data"]
    assert data["options"]["empty_form"] == "gsobj_1011"
    assert data["faults"]["script"] == ["error"]
    assert api.sim.tenant.options.requests_per_minute == 7
    assert api.query("Company", {"select": ["Gsid"]}).status_code == 500
    assert api.post("/__sim/options", {"options": {"nope": 1}}).status_code == 400
    assert api.http.get("/__sim/options").json()["data"]["options"]["requests_per_minute"] == 7


def test_time_read_and_advance_with_a_fake_clock(api: Api, clock: FakeClock) -> None:
    assert api.http.get("/__sim/time").json()["data"] == {
        "now": "2026-11-23T16:00:00.000Z",
        "fake": True,
    }
    reply = api.post("/__sim/time/advance", {"seconds": 90})
    assert reply.json()["data"]["now"] == "2026-11-23T16:01:30.000Z"
    assert clock.now().minute == 1
    assert api.post("/__sim/time/advance", {"seconds": -1}).status_code == 400


def test_time_cannot_advance_on_the_system_clock() -> None:
    with running_sim(companies=2, ctas=0, goals=0) as sim:
        import httpx

        reply = httpx.post(
            f"{sim.base_url}/__sim/time/advance", json={"seconds": 1}, headers=sim.headers
        )
        assert reply.status_code == 400
        assert (
            httpx.get(f"{sim.base_url}/__sim/time", headers=sim.headers).json()["data"]["fake"]
            is False
        )


def test_records_and_stats(api: Api) -> None:
    key = api.sim.tenant.keys("Company")[0]
    record = api.http.get(f"/__sim/records/company/{key}").json()["data"]
    assert record["Gsid"] == key
    assert record["ModifiedDate"].endswith("Z")
    assert api.http.get("/__sim/records/Company/NOPE").status_code == 404
    assert api.http.get("/__sim/records/Nope/NOPE").status_code == 404
    stats = api.http.get("/__sim/stats").json()["data"]
    assert stats["records"]["Company"] == 120
    assert api.http.get("/__sim/nothing").status_code == 404
