"""The [http] server: health, readiness, metrics and the pull feed over a real store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from watcher.clock import FakeClock
from watcher.core.events import CloudEvent
from watcher.daemon.http import EventSignal, HttpServer, Readiness, bind, create_app
from watcher.daemon.metrics import Metrics
from watcher.errors import ConfigError
from watcher.store import Store
from watcher.store.store import PageCommit
from watcher.store.view import StoreView

TOKEN = "feed-token-for-tests-7c1e"


def event(n: int, source: str = "companies", change: str = "updated") -> CloudEvent:
    kind = {"companies": "company", "ctas": "cta"}[source]
    return cast(
        CloudEvent,
        {
            "specversion": "1.0",
            "id": f"0193f5c2-7c1e-7d2a-9c4e-{n:012d}",
            "source": f"gainsight://acme.gainsightcloud.com/{source}",
            "type": f"gainsight.{kind}.{change}",
            "subject": f"KEY{n}",
            "time": "2026-11-23T16:00:00.000Z",
            "datacontenttype": "application/json",
            "data": {"source": source, "key": f"KEY{n}", "change": change},
        },
    )


def commit(store: Store, *events: CloudEvent) -> None:
    """Commit ``events`` in order, one transaction each."""
    for e in events:
        store.commit(e["data"]["source"], PageCommit(events=[e]))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "watcher.db", clock=FakeClock())
    yield s
    s.close()


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def feed(
    store: Store, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, EventSignal, Store]]:
    signal = EventSignal()
    app = create_app(
        view=StoreView(tmp_path / "watcher.db"),
        metrics=Metrics(),
        readiness=lambda: Readiness(True, {"store": "ok"}),
        token=TOKEN,
        signal=signal,
    )
    async with client_for(app) as client:
        yield client, signal, store


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_feed_pages_through_events_by_cursor(
    feed: tuple[httpx.AsyncClient, EventSignal, Store],
) -> None:
    """after= is exclusive, limit bounds the page, next_after continues it."""
    client, _, store = feed
    commit(store, *(event(n) for n in range(1, 6)))
    first = (await client.get("/v1/events?after=0&limit=2", headers=AUTH)).json()
    assert [e["sequence"] for e in first["events"]] == [1, 2]
    assert first["next_after"] == 2
    rest = (await client.get(f"/v1/events?after={first['next_after']}", headers=AUTH)).json()
    assert [e["sequence"] for e in rest["events"]] == [3, 4, 5]
    assert rest["events"][0]["specversion"] == "1.0"
    empty = (await client.get("/v1/events?after=5", headers=AUTH)).json()
    assert empty == {"events": [], "next_after": 5}


async def test_feed_filters_by_source_and_type(
    feed: tuple[httpx.AsyncClient, EventSignal, Store],
) -> None:
    """source= and type= narrow the feed; next_after still moves the cursor."""
    client, _, store = feed
    commit(store, event(1), event(2, "ctas", "created"), event(3, "companies", "deleted"))
    ctas = (await client.get("/v1/events?source=ctas", headers=AUTH)).json()
    assert [e["subject"] for e in ctas["events"]] == ["KEY2"]
    deleted = (await client.get("/v1/events?type=gainsight.company.deleted", headers=AUTH)).json()
    assert [e["subject"] for e in deleted["events"]] == ["KEY3"]
    assert deleted["next_after"] == 3
    # a filtered reader's cursor moves past events that did not match
    commit(store, event(4), event(5))
    later = await client.get("/v1/events?after=3&source=ctas", headers=AUTH)
    assert later.json() == {"events": [], "next_after": 5}
    full_page = await client.get("/v1/events?after=0&limit=1&source=companies", headers=AUTH)
    assert full_page.json()["next_after"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer "},
    ],
)
async def test_feed_refuses_a_missing_or_wrong_token(
    feed: tuple[httpx.AsyncClient, EventSignal, Store], headers: dict[str, str]
) -> None:
    """401 without the right bearer token; the body never echoes the token."""
    client, _, store = feed
    commit(store, event(1))
    response = await client.get("/v1/events", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text
    assert "KEY1" not in response.text


@pytest.mark.parametrize(
    "query", ["after=-1", "after=x", "limit=0", "limit=1001", "wait=-2", "wait=soon"]
)
async def test_feed_rejects_bad_parameters(
    feed: tuple[httpx.AsyncClient, EventSignal, Store], query: str
) -> None:
    """Bad cursor, limit or wait: 400 with a message saying what is allowed."""
    client, _, _ = feed
    response = await client.get(f"/v1/events?{query}", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"]


async def test_long_poll_returns_as_soon_as_an_event_commits(
    feed: tuple[httpx.AsyncClient, EventSignal, Store],
) -> None:
    """wait= holds the request until a new event commits (woken by the signal)."""
    client, signal, store = feed
    request = asyncio.create_task(client.get("/v1/events?after=0&wait=30", headers=AUTH))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not request.done()
    commit(store, event(1))
    signal.notify()
    response = await asyncio.wait_for(request, 5)
    assert [e["subject"] for e in response.json()["events"]] == ["KEY1"]


async def test_long_poll_gives_an_empty_page_when_nothing_commits(
    feed: tuple[httpx.AsyncClient, EventSignal, Store],
) -> None:
    """After wait seconds without events: an empty page, cursor unchanged."""
    client, _, _ = feed
    response = await client.get("/v1/events?after=7&wait=0.05", headers=AUTH)
    assert response.json() == {"events": [], "next_after": 7}


async def test_feed_is_off_without_a_token(tmp_path: Path) -> None:
    """No feed_token configured: the feed answers 404, health still works."""
    app = create_app(
        view=StoreView(tmp_path / "none.db"),
        metrics=Metrics(),
        readiness=lambda: Readiness(False, {"store": "not open"}),
        token=None,
    )
    async with client_for(app) as client:
        off = await client.get("/v1/events", headers=AUTH)
        assert off.status_code == 404
        assert "feed_token" in off.json()["error"]
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"store": "not open"}


async def test_metrics_expose_polls_api_calls_events_deliveries_and_outbox(
    store: Store, tmp_path: Path
) -> None:
    """Prometheus text with every family the issue lists, outbox read from the store."""
    now = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    store.conn.execute(
        "INSERT INTO deliveries (id, event_sequence, event_id, rule, sink, order_key, status, "
        "attempts, created_at) VALUES ('d1', 1, 'e1', 'r', 'crm', 'k', 'pending', 0, "
        "'2026-11-23T15:58:00.000Z'), ('d2', 1, 'e1', 'r', 'ops-slack', 'k', 'delivered', 1, "
        "'2026-11-23T15:59:00.000Z')"
    )
    view = StoreView(tmp_path / "watcher.db")
    metrics = Metrics(lambda: view.stats(now))
    metrics.polls.labels(source="companies", mode="incremental", outcome="ok").inc()
    metrics.last_success.labels(source="companies").set(now.timestamp())
    await metrics.on_response(httpx.Response(200))
    await metrics.on_response(httpx.Response(429))
    metrics.events.labels(type="gainsight.company.updated").inc(3)
    metrics.deliveries.labels(sink="crm", outcome="delivered").inc()
    app = create_app(view=view, metrics=metrics, readiness=lambda: Readiness(True), token=None)
    async with client_for(app) as client:
        response = await client.get("/metrics")
    text = response.text
    assert response.headers["content-type"].startswith("text/plain")
    for line in [
        'watcher_polls_total{mode="incremental",outcome="ok",source="companies"} 1.0',
        'watcher_api_calls_total{status_class="2xx"} 1.0',
        'watcher_api_calls_total{status_class="4xx"} 1.0',
        "watcher_api_rate_limited_total 1.0",
        'watcher_events_total{type="gainsight.company.updated"} 3.0',
        'watcher_delivery_attempts_total{outcome="delivered",sink="crm"} 1.0',
        "watcher_outbox_depth 1.0",
        "watcher_outbox_oldest_pending_age_seconds 120.0",
        'watcher_deliveries{sink="crm",status="pending"} 1.0',
    ]:
        assert line in text, line
    assert (
        'watcher_last_successful_poll_timestamp_seconds{source="companies"} 1.7954496e+09' in text
    )


async def test_server_serves_on_a_real_loopback_socket(store: Store, tmp_path: Path) -> None:
    """The uvicorn server answers on its bound port and stops when asked."""
    app = create_app(
        view=StoreView(tmp_path / "watcher.db"),
        metrics=Metrics(),
        readiness=lambda: Readiness(True, {"store": "ok"}),
        token=TOKEN,
    )
    server = HttpServer(app, bind("127.0.0.1", 0))
    task = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            for _ in range(200):
                try:
                    response = await client.get("/readyz")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.01)
            assert response.json() == {"status": "ready", "checks": {"store": "ok"}}
    finally:
        server.stop()
        await task


def test_a_busy_port_is_a_clear_config_error() -> None:
    """Binding a port in use names the setting and what to do."""
    first = bind("127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match=r"http.listen .*cannot bind.*pick a free port"):
            bind("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()
