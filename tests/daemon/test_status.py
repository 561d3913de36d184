"""`watcher status` and GET / + GET /v1/status: the figures from a real store, the page's
escaping and chart, the CLI with several tenants, and the token on a non-loopback listen."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.rules.events import event
from watcher.cli import main
from watcher.clock import FakeClock
from watcher.config import parse_config
from watcher.core.events import CloudEvent
from watcher.daemon.http import Readiness, create_app
from watcher.daemon.lock import DaemonLock, holder
from watcher.daemon.metrics import Metrics
from watcher.daemon.status import collect
from watcher.daemon.status_page import chart, render
from watcher.dates import format_utc
from watcher.errors import StoreError
from watcher.store import Store
from watcher.store.outbox import Outbox
from watcher.store.schedule import ScheduleState
from watcher.store.status import gainsight_code
from watcher.store.store import PageCommit
from watcher.store.usage import ApiUsage
from watcher.store.view import StoreView

NOW = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)
TOKEN = "status-token-0123456789abcdef"


def config(store: Path, **http: Any) -> Any:
    data: dict[str, Any] = {
        "gainsight": {
            "base_url": "https://acme.gainsightcloud.com",
            "access_key_env": "K",
            "requests_per_minute": 90,
        },
        "store": {"path": str(store)},
        "sources": [
            {"name": "companies", "kind": "company", "incremental": "*/5 * * * *"},
            {"name": "ctas", "kind": "cta"},
        ],
        "sinks": {
            "hook": {"type": "webhook", "url": "https://hooks.example.com/x"},
            "js": {"type": "nats", "url": "tls://nats.example.com:4222"},
        },
    }
    if http:
        data["http"] = http
    return parse_config(data)


def at(delta: timedelta) -> str:
    return format_utc(NOW - delta)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store with polls (one failed with a Gainsight code), events, deliveries, a pause."""
    path = tmp_path / "watcher.db"
    clock = FakeClock(NOW - timedelta(days=2))
    store = Store.open(path, clock=clock)

    def route(_event: CloudEvent) -> list[tuple[str, str]]:
        return [("notify", "hook"), ("notify", "js")]

    old = event("created", key="C0", after={"Gsid": "C0"}, time=at(timedelta(days=2)))
    old["id"] = "e-old"
    store.commit("companies", PageCommit(events=[old]).route(route))  # outside every 24-hour figure
    hook_old = Outbox(store.db).pending_window("hook", limit=10)
    Outbox(store.db).mark_delivered([r.id for r in hook_old], NOW - timedelta(days=2))
    clock.advance((NOW - timedelta(minutes=10) - clock.now()).total_seconds())
    store.start_poll("p1", "companies", "full", "scheduled")
    clock.advance(2)
    evs = []
    for n, (ago, key) in enumerate([(timedelta(hours=3), "C1"), (timedelta(minutes=5), "C2")]):
        ev = event(
            "updated",
            key=key,
            before={"Gsid": key, "Name": "<b>Acme</b>", "Arr": 100},
            after={"Gsid": key, "Name": "<b>Acme</b>", "Arr": 90},
            time=at(ago),
        )
        ev["id"] = f"e{n}"
        evs.append(ev)
    store.commit(
        "companies",
        PageCommit(
            writes=[("C1", 1, {"Gsid": "C1"}), ("C2", 2, {"Gsid": "C2"})],
            events=evs,
            poll_id="p1",
            poll_counts={"records": 2, "api_calls": 3},
            state={"watermark": "2026-11-23T16:00:00.000Z"},
        ).route(route),
    )
    store.finish_poll("p1", outcome="ok")
    store.start_poll("p2", "ctas", "full", "scheduled")
    store.finish_poll(
        "p2",
        outcome="failed",
        error="/v1/data/objects/query/call_to_action: Gainsight answered result=false "
        "(HTTP 400, errorCode GS_2301: invalid field; request id r-1)",
    )
    outbox = Outbox(store.db)
    outbox.mark_delivered([r.id for r in outbox.pending_window("hook", limit=10)], NOW)
    first = next(r for r in outbox.pending_window("js", limit=10) if r.event_id == "e0")
    outbox.mark_retry(first.id, next_attempt_at=NOW.timestamp() + 60, error="no ack; will retry")
    outbox.pause("sink", "js", reason="maintenance", now=NOW)
    store.close()
    ScheduleState(path).record("companies", "full", NOW - timedelta(minutes=10), NOW, "ok")
    usage = ApiUsage(path)
    for hours_ago, status in [(26, 200), (3, 200), (3, 429), (0, 200), (0, 200)]:
        usage.record(NOW - timedelta(hours=hours_ago), status)
    usage.close()
    return path


def test_figures_per_source_rule_and_sink(db: Path) -> None:
    status = collect(config(db), db_path=db, now=NOW, rules=["notify", "quiet"])
    companies, ctas = status["sources"]
    assert companies["records"] == 2
    assert companies["last_poll"]["outcome"] == "ok"
    assert companies["last_poll"]["api_calls"] == 3
    assert companies["last_poll"]["duration_s"] == 2.0
    assert companies["events_last_hour"] == 1
    assert companies["events_last_day"] == 2
    assert sum(companies["events_per_hour"]) == 2
    assert len(companies["events_per_hour"]) == 24
    assert companies["watermark"] == "2026-11-23T16:00:00.000Z"
    assert companies["next_poll"] == {"mode": "incremental", "at": "2026-11-23T16:35:00.000Z"}
    assert ctas["next_poll"] == {"mode": "full", "at": format_utc(NOW)}  # never ran: now
    assert companies["failing"] is False
    assert ctas["failing"] is True
    assert ctas["last_error"]["gainsight_code"] == "GS_2301"
    notify, quiet = status["rules"]
    assert notify["matches_last_day"] == 2
    assert notify["delivered_last_day"] == 2
    assert quiet == {
        "name": "quiet",
        "matches_last_day": 0,
        "delivered_last_day": 0,
        "suppressed_last_day": 0,
        "paused": False,
        "pause": None,
    }
    hook, js = status["sinks"]
    assert (hook["delivered_last_day"], hook["outbox_depth"], hook["paused"]) == (2, 0, False)
    assert (js["outbox_depth"], js["failing"], js["paused"]) == (3, 1, True)
    assert js["pause"]["reason"] == "maintenance"
    assert js["last_error"] == "no ack; will retry"
    assert js["oldest_pending_age_s"] == 2 * 86400.0  # the old event's, still pending
    assert status["api"] == {
        "calls_this_minute": 2,
        "calls_today": 4,  # since 00:00 UTC; the call 26 hours ago is yesterday's
        "rate_limited_today": 1,
        "per_minute_limit": 90,
        "per_day_limit": 50000,
    }
    assert [e["id"] for e in status["last_events"]] == ["e1", "e0", "e-old"]
    assert status["last_events"][0]["changes"] == {"Arr": {"old": 100, "new": 90}}
    assert status["daemon"] == {"running": False, "pid": None}


def test_no_database_yet_is_not_an_error(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    status = collect(config(db), db_path=db, now=NOW, rules=[])
    assert status["store_exists"] is False
    assert [s["records"] for s in status["sources"]] == [0, 0]
    assert not db.exists()  # status never creates the store


def test_lock_holder_is_seen_without_taking_the_lock(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    assert holder(db) is None
    with DaemonLock(db):
        assert holder(db) is not None
    assert holder(db) is None


def test_an_unreadable_lock_is_an_error_not_daemon_not_running(tmp_path: Path) -> None:
    """A lock file we may not open (another user's daemon) must not read as "not running"."""
    lock = tmp_path / "w.db.lock"
    lock.symlink_to(lock)  # ELOOP: an open that fails even for root (EACCES would not)
    with pytest.raises(StoreError, match="cannot read the daemon lock"):
        holder(tmp_path / "w.db")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("... (HTTP 400, errorCode OBJECT_NOT_FOUND: no such object ...)", "OBJECT_NOT_FOUND"),
        ("COCKPIT_5102: Invalid operator GTE for Gsid", "COCKPIT_5102"),
        ("connection refused after 5 tries", None),
        (None, None),
    ],
)
def test_gainsight_code_from_the_error_text(error: str | None, code: str | None) -> None:
    assert gainsight_code(error) == code


def test_page_escapes_gainsight_text_and_has_no_external_asset(db: Path) -> None:
    status = collect(config(db), db_path=db, now=NOW, rules=["notify"])
    page = render(status)
    assert "<b>Acme</b>" not in page
    assert "&lt;b&gt;Acme&lt;/b&gt;" in page
    assert not any(s in page for s in ("<script", "src=", "<link", "@import", "url("))
    assert '<meta http-equiv="refresh"' in page
    assert 'name="viewport"' in page


def test_chart_has_one_bar_per_hour_scaled_to_the_peak() -> None:
    svg = chart([0] * 22 + [5, 10], width=240, height=20)
    assert svg.count("<rect") == 24
    assert 'height="20.0"' in svg  # the peak fills the height
    assert 'height="10.0"' in svg
    assert "15 events in the last 24 hours" in svg


def test_cli_prints_one_block_per_config(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several tenants: one block each, each says whether its daemon runs."""
    first = tmp_path / "a.toml"
    first.write_text(
        f'[gainsight]\nbase_url = "https://sandbox.gainsightcloud.com"\naccess_key_env = "K"\n'
        f'[store]\npath = "{db}"\n[rules]\npaths = []\n'
        '[[sources]]\nname = "companies"\nkind = "company"\n'
    )
    second = tmp_path / "b.toml"
    second.write_text(
        '[gainsight]\nbase_url = "https://prod.gainsightcloud.com"\naccess_key_env = "K"\n'
        '[store]\npath = "prod.db"\n[rules]\npaths = []\n'
    )
    with DaemonLock(db):
        assert main(["status", "--config", str(first), "--config", str(second)]) == 0
    out = capsys.readouterr().out
    sandbox, prod = out.split("\n\n== ")
    assert sandbox.startswith("== sandbox.gainsightcloud.com")
    assert "daemon running" in sandbox
    assert "companies (company): 2 records; last full ok" in sandbox
    assert prod.startswith("prod.gainsightcloud.com")
    assert "daemon not running" in prod
    assert "not created yet" in prod
    assert main(["status", "--json", "--config", str(first), "--config", str(second)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["tenant"] for line in lines] == [
        "sandbox.gainsightcloud.com",
        "prod.gainsightcloud.com",
    ]


def test_cli_config_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[gainsight]\nbase_ur = 1\n")
    assert main(["status", "--config", str(bad)]) == 2
    assert "bad.toml" in capsys.readouterr().err


def app_for(db: Path, *, needs_token: bool, token: str | None) -> Any:
    return create_app(
        view=StoreView(db),
        metrics=Metrics(),
        readiness=lambda: Readiness(True),
        token=token,
        status=lambda: collect(config(db), db_path=db, now=NOW, rules=["notify"]),
        status_needs_token=needs_token,
    )


async def get(app: Any, path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers)


async def test_loopback_status_is_open_html_and_json(db: Path) -> None:
    app = app_for(db, needs_token=False, token=None)
    page = await get(app, "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'data-source="companies"' in page.text
    data = (await get(app, "/v1/status")).json()
    assert [s["name"] for s in data["sources"]] == ["companies", "ctas"]


async def test_non_loopback_status_takes_the_feed_token(db: Path) -> None:
    app = app_for(db, needs_token=True, token=TOKEN)
    refused = await get(app, "/")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert (await get(app, "/v1/status")).status_code == 401
    wrong = await get(app, "/v1/status", authorization="Bearer not-the-token-at-all")
    assert wrong.status_code == 401
    ok = await get(app, "/v1/status", authorization=f"Bearer {TOKEN}")
    assert ok.status_code == 200
    basic = base64.b64encode(f"admin:{TOKEN}".encode()).decode()
    assert (await get(app, "/", authorization=f"Basic {basic}")).status_code == 200
    bad = base64.b64encode(b"admin:nope").decode()
    assert (await get(app, "/", authorization=f"Basic {bad}")).status_code == 401


async def test_non_loopback_without_a_token_keeps_the_page_off(db: Path) -> None:
    app = app_for(db, needs_token=True, token=None)
    assert (await get(app, "/")).status_code == 404
    assert (await get(app, "/v1/status")).status_code == 404


async def test_the_daemon_counts_every_gainsight_response_and_each_429(tmp_path: Path) -> None:
    """CountingTransport (the daemon's Gainsight transport) records calls per minute."""
    from watcher.daemon.wiring import CountingTransport
    from watcher.store.db import migrate, open_database
    from watcher.store.usage import usage_figures

    db = open_database(tmp_path / "w.db")
    migrate(db, FakeClock().now)
    answers = iter([429, 200, 200])
    inner = httpx.MockTransport(lambda request: httpx.Response(next(answers)))
    usage = ApiUsage(tmp_path / "w.db")
    transport = CountingTransport(inner, Metrics(), usage, FakeClock(NOW))
    async with httpx.AsyncClient(transport=transport) as http:
        for _ in range(3):
            await http.post("https://acme.gainsightcloud.com/v1/data/objects/query/Company")
    usage.close()
    assert usage_figures(db.conn, NOW) == {
        "calls_this_minute": 3,
        "calls_today": 3,
        "rate_limited_today": 1,
    }
    db.conn.close()
