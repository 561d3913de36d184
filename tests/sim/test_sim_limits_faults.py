"""Rate limiting (fixed 60 s window + daily cap, FakeClock) and injected faults."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.sim.conftest import Api
from watcher.clock import FakeClock

Q = {"select": ["Gsid"], "limit": 1}


def statuses(api: Api, n: int) -> list[int]:
    return [api.query("Company", Q).status_code for _ in range(n)]


def test_fixed_window_429_then_reset_at_the_next_minute(
    make_api: Callable[..., Api], clock: FakeClock
) -> None:
    api = make_api(companies=5, requests_per_minute=5)
    # FakeClock starts at 16:00:00 exactly: the window is 16:00:00-16:00:59.
    assert statuses(api, 7) == [200] * 5 + [429] * 2
    reply = api.query("Company", Q)
    body = reply.json()
    assert (body["result"], body["errorCode"]) == (False, "GS_APIG_1429")
    assert "Retry-After" not in reply.headers  # off by default, like the real API
    clock.advance(59)
    assert statuses(api, 1) == [429]
    clock.advance(1)
    assert statuses(api, 6) == [200] * 5 + [429]


def test_window_is_fixed_not_sliding(make_api: Callable[..., Api], clock: FakeClock) -> None:
    """A burst at the end of one window and another at the start of the next both pass."""
    api = make_api(companies=5, requests_per_minute=4)
    clock.advance(59)
    assert statuses(api, 4) == [200] * 4
    clock.advance(1)
    assert statuses(api, 5) == [200] * 4 + [429]


def test_retry_after_and_ratelimit_headers_when_switched_on(
    make_api: Callable[..., Api], clock: FakeClock
) -> None:
    api = make_api(companies=5, requests_per_minute=2, retry_after=True, ratelimit_header=True)
    clock.advance(15)
    ok = api.query("Company", Q)
    assert ok.headers["x-ratelimit-limit"] == "2/minute, 50000/day"
    statuses(api, 1)
    limited = api.query("Company", Q)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "45"


def test_daily_cap(make_api: Callable[..., Api], clock: FakeClock) -> None:
    api = make_api(companies=5, requests_per_minute=100, requests_per_day=3, retry_after=True)
    assert statuses(api, 3) == [200] * 3
    clock.advance(120)
    limited = api.query("Company", Q)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) == 8 * 3600 - 120  # until midnight UTC
    clock.advance(8 * 3600)
    assert statuses(api, 1) == [200]


def test_admin_api_and_auth_failures_do_not_use_the_budget(make_api: Callable[..., Api]) -> None:
    api = make_api(companies=5, requests_per_minute=2)
    for _ in range(5):
        assert api.http.get("/__sim/stats").status_code == 200
        assert (
            api.http.post("/v2/cockpit/cta/list", headers={"Accesskey": "bad"}).status_code == 401
        )
    assert statuses(api, 3) == [200, 200, 429]


def test_scripted_faults_apply_in_order(api: Api) -> None:
    api.sim.tenant.faults.script = ["error", None, "result_false", "malformed", "truncated"]
    error = api.query("Company", Q)
    assert error.status_code == 500
    assert (error.json()["errorCode"], error.json()["errorDesc"]) == (
        "GU_1101",
        "Oops, something went wrong",
    )
    assert api.query("Company", Q).status_code == 200
    false = api.query("Company", Q)
    assert false.status_code == 200
    assert (false.json()["result"], false.json()["errorCode"]) == (False, "GU_1101")
    malformed = api.query("Company", Q)
    assert malformed.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.content)
    truncated = api.query("Company", {"select": ["Gsid", "Name"], "limit": 50})
    assert truncated.status_code == 200
    assert truncated.content.startswith(b'{"result":true')
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.content)
    assert api.query("Company", Q).status_code == 200
    assert api.sim.tenant.faults.script == []


def test_short_page_is_valid_json_with_half_the_rows(api: Api) -> None:
    """The undetectable fault: a successful page that is silently short."""
    api.sim.tenant.faults.script = ["short"]
    rows = api.records("Company", {"select": ["Gsid"], "limit": 40})
    assert [r["Gsid"] for r in rows] == api.sim.tenant.keys("Company")[:20]
    assert len(api.records("Company", {"select": ["Gsid"], "limit": 40})) == 40


def test_fault_rates_are_seeded_and_roughly_right(make_api: Callable[..., Api]) -> None:
    runs = []
    for _ in range(2):
        api = make_api(companies=5, seed=4, error_rate=0.3, requests_per_minute=1000)
        runs.append(statuses(api, 60))
    assert runs[0] == runs[1]  # same seed, same faults
    assert 8 <= runs[0].count(500) <= 30


@pytest.mark.parametrize(
    ("rate", "status", "parses"),
    [
        ("error_rate", 500, True),
        ("malformed_rate", 200, False),
        ("truncated_rate", 200, False),
        ("result_false_rate", 200, True),
        ("short_page_rate", 200, True),
    ],
)
def test_each_fault_rate_at_one_always_fires(
    make_api: Callable[..., Api], rate: str, status: int, parses: bool
) -> None:
    api = make_api(companies=10, **{rate: 1.0})
    reply = api.query("Company", {"select": ["Gsid"], "limit": 10})
    assert reply.status_code == status
    try:
        body = json.loads(reply.content)
    except json.JSONDecodeError:
        body = None
    assert (body is not None) is parses
    if rate == "short_page_rate":
        assert body is not None
        assert len(body["data"]["records"]) == 5
    elif rate != "malformed_rate" and body is not None:
        assert body["result"] is False


def test_added_latency(make_api: Callable[..., Api]) -> None:
    api = make_api(companies=5, latency=0.2)
    start = time.monotonic()
    assert api.query("Company", Q).status_code == 200
    assert time.monotonic() - start >= 0.2


def test_mutations_between_pages_only_after_the_first_page(api: Api) -> None:
    api.sim.tenant.faults.mutations_between_pages = 3
    api.records("Company", {"select": ["Gsid"], "limit": 10, "offset": 0})
    assert api.sim.tenant.changes() == []
    api.records("Company", {"select": ["Gsid"], "limit": 10, "offset": 10})
    assert len(api.sim.tenant.changes()) == 3
    api.ctas({"pageSize": 10, "pageNumber": 1})
    assert len(api.sim.tenant.changes()) == 3
    api.ctas({"pageSize": 10, "pageNumber": 2})
    assert len(api.sim.tenant.changes()) == 6


def test_offset_paging_under_mutation_can_skip_or_repeat(make_api: Callable[..., Api]) -> None:
    """Creates/deletes between pages shift offsets: a naive sweep is not the truth."""
    api = make_api(companies=300, ctas=0, goals=0, seed=2, mutations_between_pages=15)
    seen: list[str] = []
    offset = 0
    while True:
        page = [
            r["Gsid"]
            for r in api.records("Company", {"select": ["Gsid"], "limit": 20, "offset": offset})
        ]
        seen += page
        offset += 20
        if len(page) < 20:
            break
    truth = set(api.sim.tenant.keys("Company"))
    assert set(seen) != truth


def test_unknown_setting_names_are_rejected() -> None:
    from watcher.testing.sim import running_sim

    with pytest.raises(TypeError, match="unknown simulator setting"), running_sim(no_such_switch=1):
        pass
