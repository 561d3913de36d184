"""Load: 100,000 companies and 200,000 CTAs at the real API's rate limits.

The daemon (real builder: client, budget, poll engine, store, rules, dispatcher)
runs in-process against the simulated tenant over loopback. Both share a *scaled*
clock (``--scale 10``: a simulated minute lasts 6 real seconds), so the tenant's
fixed-window rate limit (100 requests per minute, 50,000 per day) and the daemon's
budget and cron schedules all run on simulated time. Real processing time (the
simulator building 5000-record pages, the engine diffing them) is inflated by the
scale factor, so durations are slight overestimates.

Schedule: both sources poll incrementally every minute and sweep fully every 10
minutes (the first sweep is the silent baseline). A steady stream of random
changes runs in the tenant from the start. Printed (and written to
bench/results/load.json):

- detection latency, change in the tenant -> its event committed in the store
  (simulated seconds; p50/p95), overall and split by whether a full sweep of the
  record's source was running at the time;
- API calls per incremental poll and per simulated minute; the busiest 60 s window
  as seen by the tenant; 429s;
- each full sweep's duration against the rate-limit floor: records / (records per
  call x calls allowed per minute) - with 5000 per call (the issue's formula) and
  with the route's real page size (1000 for the Cockpit CTA list).

    .venv/bin/python bench/load.py [--minutes 25] [--scale 10] [--companies 100000] [--ctas 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from watcher.clock import ScaledClock
from watcher.config import load_config
from watcher.daemon.metrics import Metrics
from watcher.daemon.runner import Daemon
from watcher.daemon.wiring import real_builder
from watcher.dates import parse_iso
from watcher.logging import configure_logging
from watcher.store.view import StoreView
from watcher.testing.receivers import WebhookReceiver
from watcher.testing.sim import running_sim

KEY = "load-bench-key"
OBJECT_SOURCE = {"Company": "companies", "call_to_action": "ctas"}
PAGE = {"companies": 5000, "ctas": 5000}
ROUTE = {"companies": "/Company", "ctas": "/call_to_action"}
SELECT = {
    "companies": ["Gsid", "Name", "Arr", "Stage", "Status", "Csm", "RenewalDate", "ModifiedDate"],
    "ctas": ["Gsid", "Name", "CompanyId", "StatusId", "PriorityId", "DueDate", "IsClosed",
             "ModifiedDate"],
}  # fmt: skip


class Recording(httpx.AsyncBaseTransport):
    """Notes the (scaled) time and status of every request to the tenant."""

    def __init__(self, clock: ScaledClock) -> None:
        self.clock = clock
        self.inner = httpx.AsyncHTTPTransport()
        self.calls: list[tuple[datetime, int]] = []
        self.waits: list[tuple[datetime, str, float]] = []  # (at, path, real seconds)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        at, t0 = self.clock.now(), time.perf_counter()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.calls.append((at, response.status_code))
        self.waits.append((at, request.url.path, time.perf_counter() - t0))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def config_text(base_url: str, folder: Path, rpm: int, rpd: int) -> str:
    return f"""
[gainsight]
base_url = "{base_url}"
access_key_env = "LOAD_ACCESS_KEY"
requests_per_minute = {rpm}
requests_per_day = {rpd}

[store]
path = "{folder / "watcher.db"}"

[rules]
paths = ["{folder / "rules"}"]

[[sources]]
name = "companies"
kind = "company"
select = {json.dumps(SELECT["companies"])}
ignore_fields = ["ModifiedDate"]
page_size = 5000
full_sweep = "*/10 * * * *"
incremental = "* * * * *"
delete_log = "*/5 * * * *"
max_delete_fraction = 1.0

[[sources]]
name = "ctas"
kind = "cta"
select = {json.dumps(SELECT["ctas"])}
ignore_fields = ["ModifiedDate"]
page_size = 1000
full_sweep = "*/10 * * * *"
incremental = "* * * * *"
delete_log = "*/5 * * * *"
max_delete_fraction = 1.0

[sinks.hook]
type = "webhook"
url_env = "LOAD_HOOK_URL"
"""


RULES = """
[[rules]]
name = "everything"
sources = ["companies", "ctas"]
sinks = ["hook"]
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p * len(ordered) + 0.5) - 1))]


def summary(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 1),
        "p95": round(pct(values, 0.95), 1),
        "max": round(max(values), 1),
    }


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    start = datetime.now(UTC).replace(minute=0, second=5, microsecond=0)
    clock = ScaledClock(args.scale, start)
    hook = WebhookReceiver(clock=clock)
    t_build = time.monotonic()
    async with hook:
        with running_sim(
            companies=args.companies, ctas=args.ctas, goals=0, seed=args.seed,
            access_key=KEY, clock=clock, requests_per_minute=args.rpm,
            requests_per_day=args.rpd,
        ) as sim:  # fmt: skip
            build_s = time.monotonic() - t_build
            (folder / "rules").mkdir(parents=True, exist_ok=True)
            (folder / "rules" / "all.toml").write_text(RULES)
            os.environ["LOAD_ACCESS_KEY"] = KEY
            os.environ["LOAD_HOOK_URL"] = hook.url
            path = folder / "watcher.toml"
            path.write_text(config_text(sim.base_url, folder, args.rpm, args.rpd))
            config = load_config(path)
            view = StoreView(folder / "watcher.db")
            metrics = Metrics(lambda: view.stats(clock.now()))
            transport = Recording(clock)
            daemon = Daemon(
                config,
                real_builder(
                    clock=clock, base_dir=folder, metrics=metrics, gainsight_transport=transport
                ),
                clock=clock,
                config_path=path,
                metrics=metrics,
                serve_http=False,
            )
            task = asyncio.create_task(daemon.run())
            seq0 = sim.tenant.last_seq
            rng = random.Random(args.seed)
            interval = 60.0 / args.mutations_per_min
            end = clock.monotonic() + args.minutes * 60
            while clock.monotonic() < end:
                await clock.sleep(interval * rng.uniform(0.5, 1.5))
                sim.tenant.random_mutations(1)
            quiet_from = clock.now()
            await clock.sleep(150)  # two more incremental rounds for the last changes
            daemon.request_stop()
            await task
            changes = sim.tenant.changes(seq0)
            wall = time.monotonic() - t_build
    return analyse(args, folder, changes, transport, quiet_from, build_s, wall)


def analyse(
    args: argparse.Namespace,
    folder: Path,
    changes: list[Any],
    transport: Recording,
    quiet_from: datetime,
    build_s: float,
    wall: float,
) -> dict[str, Any]:
    import sqlite3

    conn = sqlite3.connect(folder / "watcher.db")
    polls = conn.execute(
        "SELECT source, mode, started_at, finished_at, api_calls, records, pages, outcome "
        "FROM polls ORDER BY started_at"
    ).fetchall()
    events: dict[tuple[str, str], list[datetime]] = {}
    for source, key, when in conn.execute(
        "SELECT source, json_extract(body, '$.data.key'), time FROM events ORDER BY sequence"
    ):
        events.setdefault((source, key), []).append(parse_iso(when) or quiet_from)
    conn.close()

    def ts(text: str | None) -> datetime:
        return parse_iso(text or "") or quiet_from

    sweeps: dict[str, list[tuple[datetime, datetime]]] = {}
    baseline_end: dict[str, datetime] = {}
    full_rows = []
    for source, mode, s, f, calls, records, _pages, outcome in polls:
        if mode == "full" and f:
            sweeps.setdefault(source, []).append((ts(s), ts(f)))
            baseline_end.setdefault(source, ts(f))
            minutes = (ts(f) - ts(s)).total_seconds() / 60
            floor_issue = records / (5000 * args.rpm)
            floor_route = records / (PAGE[source] * args.rpm)
            full_rows.append(
                {
                    "source": source,
                    "kind": "baseline" if len(sweeps[source]) == 1 else "sweep",
                    "records": records,
                    "api_calls": calls,
                    "minutes": round(minutes, 2),
                    "floor_min_5000_per_call": round(floor_issue, 2),
                    "floor_min_route_page": round(floor_route, 2),
                    "floor_min_calls_made": round(calls / args.rpm, 2),
                    "real_s": round(minutes * 60 / args.scale, 1),
                    "real_s_waiting_for_tenant": round(
                        sum(
                            w
                            for at, path, w in transport.waits
                            if ts(s) <= at <= ts(f) and path.endswith(ROUTE[source])
                        ),
                        1,
                    ),
                    "outcome": outcome,
                }
            )
    incr = [(src, calls, pages, ts(s), ts(f)) for src, mode, s, f, calls, _, pages, _ in polls
            if mode == "incremental" and f]  # fmt: skip
    lat_all: list[float] = []
    lat_sweep: list[float] = []
    lat_quiet: list[float] = []
    lat_deleted: list[float] = []
    unmatched: dict[str, int] = {}
    for change in changes:
        source = OBJECT_SOURCE.get(change.object)
        if source is None:
            continue
        made = parse_iso(change.time)
        if made is None or source not in baseline_end or made < baseline_end[source]:
            continue  # before the baseline finished: covered by the baseline itself
        watched = set(SELECT[source]) - {"ModifiedDate"}
        if change.change == "updated" and not watched & set(change.fields):
            continue  # only fields the source does not select changed: no event is due
        times = [t for t in events.get((source, change.key), []) if t >= made]
        if not times:
            reason = "after the last delete-log read" if made > quiet_from else "net-zero"
            unmatched[reason] = unmatched.get(reason, 0) + 1
            continue
        latency = (times[0] - made).total_seconds()
        if change.change == "deleted":
            lat_deleted.append(latency)
            continue
        lat_all.append(latency)
        during = any(s <= made <= f for s, f in sweeps.get(source, [])[1:])
        (lat_sweep if during else lat_quiet).append(latency)
    per_window: dict[int, int] = {}
    t0 = transport.calls[0][0] if transport.calls else quiet_from
    for at, _ in transport.calls:
        bucket = int((at - t0).total_seconds() // 60)
        per_window[bucket] = per_window.get(bucket, 0) + 1
    sliding = 0
    times = [at for at, _ in transport.calls]
    j = 0
    for i, at in enumerate(times):
        while times[j] < at - timedelta(seconds=60):
            j += 1
        sliding = max(sliding, i - j + 1)
    sim_minutes = (transport.calls[-1][0] - t0).total_seconds() / 60 if transport.calls else 0
    return {
        "tenant": {"companies": args.companies, "ctas": args.ctas, "build_s": round(build_s, 1)},
        "limits": {"requests_per_minute": args.rpm, "requests_per_day": args.rpd},
        "scale": args.scale,
        "simulated_minutes": round(sim_minutes, 1),
        "real_seconds": round(wall, 1),
        "changes_made": len(changes),
        "detection_latency_s": summary(lat_all),
        "detection_latency_during_sweep_s": summary(lat_sweep),
        "detection_latency_no_sweep_s": summary(lat_quiet),
        "delete_detection_latency_s": summary(lat_deleted),
        "changes_without_later_event": unmatched,
        "incremental_polls": {
            "n": len(incr),
            "api_calls_per_poll": summary([float(c) for _, c, _, _, _ in incr]),
            "api_calls_per_minute_both_sources": round(
                sum(c for _, c, _, _, _ in incr) / max(1.0, len(incr) / 2), 1
            ),
            "duration_s": summary([(f - s).total_seconds() for *_, s, f in incr]),
        },
        "api_calls": {
            "total": len(transport.calls),
            "per_simulated_minute": round(len(transport.calls) / sim_minutes, 1)
            if sim_minutes
            else None,
            "busiest_60s_window": sliding,
            "http_429": sum(1 for _, status in transport.calls if status == 429),
        },
        "full_sweeps": full_rows,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=100_000)
    parser.add_argument("--ctas", type=int, default=200_000)
    parser.add_argument("--minutes", type=float, default=25, help="simulated minutes of changes")
    parser.add_argument("--scale", type=float, default=10, help="simulated seconds per real one")
    parser.add_argument("--mutations-per-min", type=float, default=30)
    parser.add_argument("--rpm", type=int, default=100)
    parser.add_argument("--rpd", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()
    configure_logging(level="error", stream=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(run(args, Path(tmp)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
