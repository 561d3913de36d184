"""Status page load time over a store with a realistic history.

    .venv/bin/python bench/status_page.py [--events 100000] [--requests 20]

Builds a store with ``--events`` events over the last 7 days across three sources, each
routed to two rules x two sinks (4 deliveries per event, most delivered, some pending,
some dead), serves the daemon's ``[http]`` app on loopback (uvicorn, as ``watcher run``
does), and times ``GET /`` and ``GET /v1/status`` (server time + transfer, p50/p95), then
the page in headless Chromium when it is installed (its start-up measured separately on
``about:blank`` and subtracted).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx

from watcher.clock import FakeClock
from watcher.config import parse_config
from watcher.core.events import CloudEvent
from watcher.daemon.http import HttpServer, Readiness, bind, create_app
from watcher.daemon.metrics import Metrics
from watcher.daemon.status import collect
from watcher.dates import format_utc
from watcher.store.outbox import Outbox
from watcher.store.store import PageCommit, Store
from watcher.store.view import StoreView

SOURCES = ("companies", "ctas", "goals")
RULES = ("arr-drop", "everything")
SINKS = ("crm", "stream")


def build(path: Path, events: int) -> None:
    now = datetime.now(UTC)
    clock = FakeClock(now - timedelta(days=7))
    routes = [(r, s) for r in RULES for s in SINKS]
    store = Store.open(path, clock=clock)
    step = timedelta(days=7) / events
    batch: list[CloudEvent] = []
    for n in range(events):
        source = SOURCES[n % 3]
        when = now - timedelta(days=7) + step * n
        key = f"K{n % 5000:05d}"
        batch.append(
            {
                "specversion": "1.0",
                "datacontenttype": "application/json",
                "id": f"ev-{n}",
                "source": f"gainsight://bench/{source}",
                "type": "gainsight.company.updated",
                "subject": key,
                "time": format_utc(when),
                "data": {
                    "source": source,
                    "key": key,
                    "change": "updated",
                    "changes": {"Arr": {"old": n, "new": n + 1}},
                    "after": {"Gsid": key, "Name": f"Company {key}", "Arr": n + 1},
                },
            }
        )
        if len(batch) == 1000:
            clock.advance((when - clock.now()).total_seconds())
            store.commit(source, PageCommit(events=batch).route(lambda _e: routes))
            batch = []
    if batch:
        store.commit("companies", PageCommit(events=batch).route(lambda _e: routes))
    for source in SOURCES:
        store.start_poll(f"p-{source}", source, "full", "scheduled")
        store.finish_poll(f"p-{source}", outcome="ok", counts={"records": 5000, "api_calls": 2})
    outbox = Outbox(store.db)
    store.conn.execute(
        "UPDATE deliveries SET status = 'delivered', delivered_at = created_at "
        "WHERE event_sequence <= ?",
        (int(events * 0.98),),
    )
    store.conn.execute(
        "UPDATE deliveries SET status = 'dead', last_error = 'HTTP 400' "
        "WHERE event_sequence % 997 = 0"
    )
    outbox.pause("sink", "stream", reason="bench", now=now)
    store.close()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def browser_load(url: str) -> tuple[float, float] | None:
    binary = shutil.which("chromium")
    if binary is None:
        return None
    args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"]
    t0 = time.perf_counter()
    subprocess.run([*args, "about:blank"], capture_output=True, check=True, timeout=60)
    blank = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([*args, url], capture_output=True, check=True, timeout=60)
    return time.perf_counter() - t0, blank


async def serve_and_time(path: Path, requests: int) -> None:
    config = parse_config(
        {
            "gainsight": {"base_url": "https://bench.gainsightcloud.com", "access_key_env": "K"},
            "store": {"path": str(path)},
            "sources": [{"name": s, "kind": "company"} for s in SOURCES],
            "sinks": {
                "crm": {"type": "webhook", "url": "https://hooks.example.com/x"},
                "stream": {"type": "nats", "url": "tls://nats.example.com:4222"},
            },
        }
    )

    def status() -> dict[str, Any]:
        return collect(config, db_path=path, now=datetime.now(UTC), rules=list(RULES))

    app = create_app(
        view=StoreView(path),
        metrics=Metrics(),
        readiness=lambda: Readiness(True),
        token=None,
        status=status,
    )
    server = HttpServer(app, bind("127.0.0.1", 0))
    task = asyncio.create_task(server.serve())
    await asyncio.sleep(0.3)
    url = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=url) as http:
        for route in ("/", "/v1/status"):
            times = []
            size = 0
            for _ in range(requests):
                t0 = time.perf_counter()
                response = await http.get(route)
                times.append((time.perf_counter() - t0) * 1000)
                size = len(response.content)
            print(
                f"GET {route}: p50 {statistics.median(times):.0f} ms, p95 {pct(times, 0.95):.0f}"
                f" ms, {size / 1024:.0f} KiB ({requests} requests)"
            )
    loaded = await asyncio.to_thread(browser_load, url + "/")
    if loaded is not None:
        total, blank = loaded
        print(
            f"headless Chromium: page loaded in {total * 1000:.0f} ms, of which browser "
            f"start-up (about:blank) {blank * 1000:.0f} ms -> page {(total - blank) * 1000:.0f} ms"
        )
    server.stop()
    await task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        path = Path(tmpdir) / "watcher.db"
        t0 = time.perf_counter()
        build(path, args.events)
        print(
            f"store: {args.events} events, {4 * args.events} deliveries over 7 days "
            f"(built in {time.perf_counter() - t0:.0f}s)"
        )
        asyncio.run(serve_and_time(path, args.requests))


if __name__ == "__main__":
    main()
