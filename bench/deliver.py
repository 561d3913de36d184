"""Delivery benchmark: webhook throughput, commit-to-receipt latency, Slack rate per URL,
nats sink throughput to a local JetStream server.

    .venv/bin/python bench/deliver.py [--events 5000] [--concurrency 16] [--only nats]

The webhook receiver runs in its own process (python -m watcher.testing.receivers),
so the figures include real HTTP over loopback and a real SQLite store (WAL). The nats
run starts ``nats-server -js`` (Debian package ``nats-server``) on a loopback port with
file storage, and counts the stream's messages afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from watcher.clock import SystemClock
from watcher.config import parse_config
from watcher.core.events import CloudEvent
from watcher.delivery.dispatcher import Dispatcher
from watcher.delivery.sinks import build_sinks
from watcher.rules.loader import RuleSet
from watcher.rules.match import build_router
from watcher.rules.models import Rule
from watcher.store.db import open_database
from watcher.store.store import PageCommit, Store
from watcher.testing.receivers import SlackReceiver

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' nats-server launcher and JetStream reader

from tests.delivery.nats_server import NatsServer, read_stream, require_nats_server

SECRET = "whsec_" + base64.b64encode(b"bench-secret-0123456789abcdef!!").decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def event(n: int, keys: int) -> CloudEvent:
    key = f"K{n % keys:05d}"
    return cast(
        CloudEvent,
        {
            "specversion": "1.0",
            "id": f"bench-{n}",
            "source": "gainsight://bench/companies",
            "type": "gainsight.company.updated",
            "subject": key,
            "time": "2026-11-23T16:00:00.000Z",
            "datacontenttype": "application/json",
            "data": {
                "source": "companies",
                "object": "Company",
                "key": key,
                "change": "updated",
                "changes": {"Arr": {"old": 100000.0 + n, "new": 80000.0 + n}},
                "before": {"Gsid": key, "Name": f"Company {key}", "Arr": 100000.0 + n},
                "after": {"Gsid": key, "Name": f"Company {key}", "Arr": 80000.0 + n},
                "poll": {"id": "bench", "mode": "full"},
            },
        },
    )


def setup(tmp: Path, sinks: dict[str, Any], sink: str) -> tuple[Any, Store, RuleSet]:
    config = parse_config(
        {
            "gainsight": {"base_url": "https://bench.gainsightcloud.com", "access_key_env": "K"},
            "sources": [{"name": "companies", "kind": "company"}],
            "sinks": sinks,
        }
    )
    rules = RuleSet((Rule(name="all", sources=("companies",), sinks=(sink,)),))
    db = open_database(tmp / "bench.db")
    store = Store(db, clock=SystemClock())
    return config, store, rules


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct))]


async def webhook_bench(events: int, concurrency: int, rate: int) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        record = tmp / "receipts.txt"
        proc = subprocess.Popen(  # noqa: ASYNC220  # started once, before timing

            [sys.executable, "-m", "watcher.testing.receivers", "webhook", "--port", str(port),
             "--record", str(record)],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        proc.stdout.readline()  # "listening"
        url = f"http://127.0.0.1:{port}/hook"
        sinks = {
            "crm": {
                "type": "webhook",
                "url": url,
                "secret_env": "S",
                "concurrency": concurrency,
            }
        }
        config, store, rules = setup(tmp, sinks, "crm")
        clock = SystemClock()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits) as http:
            built = build_sinks(config, http=http, clock=clock, environ={"S": SECRET})
            dispatcher = Dispatcher(
                store.db, built, clock=clock, rules=list(rules), sink_configs=config.sinks
            )
            # 1. throughput: a backlog of `events` queued deliveries, drained
            for start in range(0, events, 500):
                store.commit(
                    "companies",
                    PageCommit(
                        events=[event(n, 1000) for n in range(start, min(start + 500, events))]
                    ).route(build_router(rules)),
                )
            t0 = time.perf_counter()
            stats = await dispatcher.run_until_idle()
            elapsed = time.perf_counter() - t0
            print(
                f"webhook throughput: {stats.delivered} deliveries in {elapsed:.2f}s = "
                f"{stats.delivered / elapsed:.0f}/s (concurrency {concurrency}, signed, "
                "1000 keys, per-key ordering on)"
            )
            # 2. latency: commits at `rate`/s while the dispatcher runs
            stop = asyncio.Event()
            runner = asyncio.ensure_future(dispatcher.run(stop, poll_interval=0.5))
            committed: dict[str, float] = {}
            batch = 10
            total = rate * 5
            for start in range(events, events + total, batch):
                page = [event(n, 1000) for n in range(start, start + batch)]
                store.commit("companies", PageCommit(events=page).route(build_router(rules)))
                now = time.time()
                for ev in page:
                    committed[ev["id"]] = now
                dispatcher.wake()
                await asyncio.sleep(batch / rate)
            while dispatcher.outbox.counts().get("pending", 0):  # noqa: ASYNC110  # polls SQLite
                await asyncio.sleep(0.05)
            stop.set()
            await runner
        proc.terminate()
        proc.wait(10)
        receipts: dict[str, float] = {}
        for line in record.read_text().splitlines():
            if line.strip():
                ident, at = line.split()
                receipts.setdefault(ident, float(at))
        lat = [(receipts[i] - c) * 1000 for i, c in committed.items() if i in receipts]
        print(
            f"commit-to-receipt latency at {rate} events/s: p50 {percentile(lat, 0.5):.1f} ms, "
            f"p95 {percentile(lat, 0.95):.1f} ms, max {max(lat):.1f} ms ({len(lat)} events)"
        )
        store.close()


async def slack_bench(seconds: int) -> None:
    async with SlackReceiver() as slack:
        with tempfile.TemporaryDirectory() as tmpdir:
            sinks = {"ops-slack": {"type": "slack", "url_env": "U"}}
            config, store, rules = setup(Path(tmpdir), sinks, "ops-slack")
            clock = SystemClock()
            async with httpx.AsyncClient() as http:
                built = build_sinks(config, http=http, clock=clock, environ={"U": slack.url()})
                dispatcher = Dispatcher(
                    store.db, built, clock=clock, rules=list(rules), sink_configs=config.sinks
                )
                stop = asyncio.Event()
                runner = asyncio.ensure_future(dispatcher.run(stop, poll_interval=0.2))
                n = 0
                for _ in range(seconds * 20):  # 20 events/s offered
                    store.commit(
                        "companies", PageCommit(events=[event(n, 50)]).route(build_router(rules))
                    )
                    n += 1
                    dispatcher.wake()
                    await asyncio.sleep(0.05)
                while dispatcher.outbox.counts().get("pending", 0):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                stop.set()
                await runner
            store.close()
        times = [r.at for r in slack.received]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        per_window = max(sum(1 for t in times if s <= t < s + 1.0) for s in times)
        rejected = sum(1 for r in slack.received if r.status != 200)
        print(
            f"slack: {n} events offered at 20/s -> {len(slack.ok)} messages in "
            f"{times[-1] - times[0]:.1f}s; max {per_window} message(s) in any 1 s window, "
            f"min gap {min(gaps):.3f}s, receiver 429s: {rejected}"
        )


async def nats_bench(events: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        server = NatsServer(tmp / "js").start()
        try:
            sinks = {"js": {"type": "nats", "url": server.url, "concurrency": concurrency}}
            config, store, rules = setup(tmp, sinks, "js")
            clock = SystemClock()
            async with httpx.AsyncClient() as http:
                built = build_sinks(config, http=http, clock=clock, environ={})
                dispatcher = Dispatcher(
                    store.db, built, clock=clock, rules=list(rules), sink_configs=config.sinks
                )
                for start in range(0, events, 500):
                    store.commit(
                        "companies",
                        PageCommit(
                            events=[event(n, 1000) for n in range(start, min(start + 500, events))]
                        ).route(build_router(rules)),
                    )
                await dispatcher.run_until_idle()  # first publish creates the stream: not timed
                store.commit(
                    "companies",
                    PageCommit(events=[event(n, 1000) for n in range(events, 2 * events)]).route(
                        build_router(rules)
                    ),
                )
                t0 = time.perf_counter()
                stats = await dispatcher.run_until_idle()
                elapsed = time.perf_counter() - t0
                await dispatcher.aclose()
            stored = len(await read_stream(server.url, "GAINSIGHT"))
            print(
                f"nats throughput: {stats.delivered} events in {elapsed:.2f}s = "
                f"{stats.delivered / elapsed:.0f}/s (concurrency {concurrency}, each publish "
                f"acknowledged by a local JetStream file stream, 1000 keys, per-key ordering "
                f"on); stream holds {stored} messages"
            )
            store.close()
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument(
        "--concurrency", type=int, default=4, help="sink concurrency (default as config)"
    )
    parser.add_argument("--rate", type=int, default=200, help="events/s for the latency run")
    parser.add_argument("--slack-seconds", type=int, default=5)
    parser.add_argument("--only", choices=["webhook", "slack", "nats"], default=None)
    args = parser.parse_args()
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    if args.only in (None, "webhook"):
        asyncio.run(webhook_bench(args.events, args.concurrency, args.rate))
    if args.only in (None, "slack"):
        asyncio.run(slack_bench(args.slack_seconds))
    if args.only in (None, "nats"):
        try:
            require_nats_server()  # the tests' lookup: it fails the way a test does
        except pytest.fail.Exception as exc:
            sys.exit(f"nats: not measured: {exc.msg}")
        asyncio.run(nats_bench(args.events, args.concurrency))


if __name__ == "__main__":
    main()
