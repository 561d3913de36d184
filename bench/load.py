"""Load: 100,000 companies and 200,000 CTAs at the real API's rate limits.

The daemon (real builder: client, budget, poll engine, store, rules, dispatcher)
runs in this process against the simulated tenant over loopback; the tenant runs in
a process of its own (a real tenant builds its pages on its own servers: in the
daemon's process the simulator would hold the daemon's GIL). Both share a *scaled*
clock (``--scale 10``: a simulated minute lasts 6 real seconds), so the tenant's
fixed-window rate limit (100 requests per minute, 50,000 per day) and the daemon's
budget and schedules all run on simulated time. Real processing time (the
simulator building 5000-record pages, the engine diffing them) is inflated by the
scale factor, so durations are overestimates. Changes start once both baselines
(the first full sweep of each source, silent) are in.

Cron mode (the default): both sources poll incrementally every minute and sweep
fully every 10 minutes. Printed (and written to bench/results/load.json):

- detection latency, change in the tenant -> its event committed in the store
  (simulated seconds; p50/p95), overall and split by whether a full sweep of the
  record's source was running at the time;
- API calls per incremental poll and per simulated minute; the busiest 60 s window
  as seen by the tenant; 429s;
- each full sweep's duration against the rate-limit floor: records / (records per
  call x calls allowed per minute) - with 5000 per call (the issue's formula) and
  with the source's page size (``--cta-page-size``, 1000 here).

``--fast-lane``: both sources on the fast lane (``poll_every = "10s"``, no
incremental or delete-log cron), CTAs swept in the route's default 5000-record
pages every 3 minutes, ``--scale 3`` (a 10 s read interval against real processing
inflated 3x, not 10x: at ``--scale 10`` the simulator's serving of one request at a
time, a 5000-record sweep page before the fast lane's read, adds seconds). Also
printed (``fast_lane`` in bench/results/load-fastlane.json, and one line at the end):
fast-lane detection latency (change -> event committed, and -> webhook received;
p50/p95/max) for changes made while a 200k-CTA full sweep ran, and for changes with
no sweep at all between change and event; the ratio of the p95s against the
target (<= 2x); and where a fast-lane read's time went in each group (its
duration, its wait before its first request - the budget -, the tenant's reply
time, and how late the event loop woke a 20 ms timer).

    .venv/bin/python bench/load.py [--minutes 25] [--scale 10] [--companies 100000] [--ctas 200000]
    .venv/bin/python bench/load.py --fast-lane        # make bench; about 5.5 real minutes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
import traceback
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
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
from watcher.sim.tenant import Change
from watcher.store.view import StoreView
from watcher.testing.receivers import WebhookReceiver
from watcher.testing.sim import build_sim, serve

KEY = "load-bench-key"
#: ``--fast-lane``: every source's ``poll_every``, and the issue's target for it.
FAST_EVERY = "10s"
TARGET_RATIO = 2.0  # fast-lane p95 during a CTA sweep / without a sweep
#: Defaults of the two modes (help texts show them as "cron; fast lane").
CRON_DEFAULTS: dict[str, Any] = {
    "minutes": 25, "scale": 10, "full_sweep": "*/10 * * * *", "cta_page_size": 1000,
    "settle_s": 150,
}  # fmt: skip
FAST_DEFAULTS: dict[str, Any] = {
    "minutes": 14, "scale": 3, "full_sweep": "*/3 * * * *", "cta_page_size": 5000,
    "settle_s": 60,
}  # fmt: skip
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
        self.reads: list[tuple[datetime, float]] = []  # incremental reads: (at, real seconds)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        at, t0 = self.clock.now(), time.perf_counter()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        spent = time.perf_counter() - t0
        self.calls.append((at, response.status_code))
        self.waits.append((at, request.url.path, spent))
        where = json.loads(request.content or b"{}").get("where")
        if where and "ModifiedDate" in json.dumps(where):  # an incremental (fast-lane) read
            self.reads.append((at, spent))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class LoopLag:
    """How late the event loop wakes a task that sleeps :data:`STEP_S` real seconds: the
    time callbacks (page processing, commits) hold the loop. A watcher thread notes
    where the loop's thread is whenever it has been held for over :data:`STALL_S`
    (the innermost frame of the watcher package, and the frame that called it)."""

    STEP_S = 0.02
    STALL_S = 0.1

    def __init__(self, clock: ScaledClock) -> None:
        self.clock = clock
        self.samples: list[tuple[datetime, float]] = []  # (at, real seconds late)
        self.stalls: list[tuple[datetime, str]] = []  # where the loop was held, every 10 ms
        self._beat = time.perf_counter()
        self._done = threading.Event()

    async def run(self) -> None:
        loop_thread = threading.get_ident()
        watcher = threading.Thread(target=self._watch, args=(loop_thread,), daemon=True)
        watcher.start()
        try:
            while True:
                t0 = time.perf_counter()
                await asyncio.sleep(self.STEP_S)
                self._beat = now = time.perf_counter()
                self.samples.append((self.clock.now(), now - t0 - self.STEP_S))
        finally:
            self._done.set()

    def _watch(self, loop_thread: int) -> None:
        while not self._done.wait(0.01):
            if time.perf_counter() - self._beat < self.STEP_S + self.STALL_S:
                continue
            frame = sys._current_frames().get(loop_thread)
            if frame is None:
                continue
            ours = [
                f"{Path(f.filename).relative_to(ROOT)}:{f.lineno} {f.name}"
                for f in traceback.extract_stack(frame)
                if f.filename.startswith(str(ROOT / "watcher"))
            ]
            where = " <- ".join(reversed(ours[-2:])) or "outside the watcher package"
            self.stalls.append((self.clock.now(), where))


def schedule(fast_lane: bool, full_sweep: str) -> str:
    """A source's schedule lines: the 1-minute crons, or the fast lane (``poll_every``)."""
    lines = [f'full_sweep = "{full_sweep}"']
    if fast_lane:
        lines.append(f'poll_every = "{FAST_EVERY}"')
    else:
        lines += ['incremental = "* * * * *"', 'delete_log = "*/5 * * * *"']
    return "\n".join(lines)


def config_text(
    base_url: str,
    folder: Path,
    rpm: int,
    rpd: int,
    *,
    fast_lane: bool = False,
    full_sweep: str = "*/10 * * * *",
    cta_page_size: int = 1000,
) -> str:
    timing = schedule(fast_lane, full_sweep)
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
{timing}
max_delete_fraction = 1.0

[[sources]]
name = "ctas"
kind = "cta"
select = {json.dumps(SELECT["ctas"])}
ignore_fields = ["ModifiedDate"]
page_size = {cta_page_size}
{timing}
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


class TenantTimes:
    """ASGI middleware in the tenant's process: how long the simulator spends on each
    request, by kind (a fast-lane read, a sweep page, other reads). Against the reply
    time the daemon sees, the rest is queueing in the tenant (it serves one at a time)."""

    def __init__(self, app: Any, clock: ScaledClock, samples: list[tuple[datetime, str, float]]):
        self.app = app
        self.clock = clock
        self.samples = samples

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/__sim"):
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def receive_body() -> Any:
            message = await receive()
            body.extend(message.get("body", b""))
            return message

        at, t0 = self.clock.now(), time.perf_counter()
        await self.app(scope, receive_body, send)
        spent = time.perf_counter() - t0
        try:
            query = json.loads(bytes(body) or b"{}")
        except ValueError:
            query = {}
        where = json.dumps(query.get("where")) if isinstance(query, dict) else ""
        kind = (
            "fast_read"
            if "ModifiedDate" in where
            else "sweep_page"
            if isinstance(query, dict) and "where" not in query and "orderBy" in query
            else "other"
        )
        self.samples.append((at, kind, spent))


def serve_tenant(args: argparse.Namespace, clock: ScaledClock, conn: Connection) -> None:
    """The simulated tenant, in its own process (forked: ``clock`` is the parent's, and
    ``time.monotonic`` is the machine's, so both processes read the same scaled time).

    A real tenant builds its pages on its own servers; in the daemon's process the
    simulator's page building (a sort of 200k keys after each change) would hold the
    daemon's GIL and be counted as the daemon's latency. Asked ``"times"``, it sends
    what :class:`TenantTimes` noted; ``"stop"`` ends it."""
    _tenant, app = build_sim(
        companies=args.companies, ctas=args.ctas, goals=0, seed=args.seed,
        access_key=KEY, clock=clock, requests_per_minute=args.rpm,
        requests_per_day=args.rpd,
    )  # fmt: skip
    samples: list[tuple[datetime, str, float]] = []
    app.add_middleware(TenantTimes, clock=clock, samples=samples)
    with serve(app) as base_url:
        conn.send(base_url)
        while conn.recv() != "stop":
            conn.send(list(samples))


def start_tenant(
    args: argparse.Namespace, clock: ScaledClock
) -> tuple[BaseProcess, Connection, str]:
    """Fork the tenant's process (before any thread or event loop exists here)."""
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    proc = multiprocessing.get_context("fork").Process(
        target=serve_tenant, args=(args, clock, theirs), daemon=True
    )
    proc.start()
    if not ours.poll(300):
        raise SystemExit("the simulated tenant did not start within 300 s")
    return proc, ours, str(ours.recv())


async def baselines_done(folder: Path) -> int:
    """Full sweeps finished so far (the first of each source is its baseline)."""

    def count() -> int:
        import sqlite3

        try:
            conn = sqlite3.connect(folder / "watcher.db")
            try:
                row = conn.execute(
                    "SELECT count(*) FROM polls WHERE mode = 'full' AND finished_at IS NOT NULL"
                ).fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            return 0
        return int(row[0])

    return await asyncio.to_thread(count)


async def run(
    args: argparse.Namespace, folder: Path, clock: ScaledClock, base_url: str, conn: Connection
) -> dict[str, Any]:
    start = clock.now() - timedelta(seconds=clock.monotonic() - 1000.0)
    hook = WebhookReceiver(clock=clock)
    t_run = time.monotonic()
    admin = httpx.AsyncClient(
        base_url=base_url, headers={"Accesskey": KEY}, timeout=httpx.Timeout(120.0)
    )
    async with hook, admin:
        (folder / "rules").mkdir(parents=True, exist_ok=True)
        (folder / "rules" / "all.toml").write_text(RULES)
        os.environ["LOAD_ACCESS_KEY"] = KEY
        os.environ["LOAD_HOOK_URL"] = hook.url
        path = folder / "watcher.toml"
        path.write_text(
            config_text(
                base_url, folder, args.rpm, args.rpd,
                fast_lane=args.fast_lane, full_sweep=args.full_sweep,
                cta_page_size=args.cta_page_size,
            )
        )  # fmt: skip
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
        # Changes start once both baselines are in (changes before them are not counted).
        while await baselines_done(folder) < len(SELECT):
            await clock.sleep(5)
        lag = LoopLag(clock)
        lag_task = asyncio.create_task(lag.run())
        seq0 = (await admin_get(admin, "/__sim/changes?after=0"))["last_seq"]
        rng = random.Random(args.seed)
        interval = 60.0 / args.mutations_per_min
        end = clock.monotonic() + args.minutes * 60
        while clock.monotonic() < end:
            await clock.sleep(interval * rng.uniform(0.5, 1.5))
            reply = await admin.post("/__sim/mutate", json={"random": 1})
            reply.raise_for_status()
        quiet_from = clock.now()
        await clock.sleep(args.settle_s)  # more incremental rounds for the last changes
        daemon.request_stop()
        await task
        lag_task.cancel()
        data = await admin_get(admin, f"/__sim/changes?after={seq0}")
        conn.send("times")
        tenant_times: list[tuple[datetime, str, float]] = await asyncio.to_thread(conn.recv)
        changes = [Change(**c) for c in data["changes"]]
        wall = time.monotonic() - t_run
    receipts = [(clock_time(start, r.at), r.json()) for r in hook.received]
    return analyse(
        args, folder, changes, transport, quiet_from, wall, receipts, lag.samples, tenant_times,
        lag.stalls,
    )  # fmt: skip


async def admin_get(admin: httpx.AsyncClient, path: str) -> dict[str, Any]:
    reply = await admin.get(path)
    reply.raise_for_status()
    data: dict[str, Any] = reply.json()["data"]
    return data


def clock_time(start: datetime, monotonic: float) -> datetime:
    """A :class:`ScaledClock` reading of ``monotonic()`` as its ``now()`` (both count
    from the clock's start: ``now = start + (monotonic - 1000)``)."""
    return start + timedelta(seconds=monotonic - 1000.0)


def analyse(
    args: argparse.Namespace,
    folder: Path,
    changes: list[Any],
    transport: Recording,
    quiet_from: datetime,
    wall: float,
    receipts: list[tuple[datetime, Any]],
    lag: list[tuple[datetime, float]],
    tenant_times: list[tuple[datetime, str, float]],
    stalls: list[tuple[datetime, str]],
) -> dict[str, Any]:
    import sqlite3

    conn = sqlite3.connect(folder / "watcher.db")
    polls = conn.execute(
        "SELECT source, mode, started_at, finished_at, api_calls, records, pages, outcome "
        "FROM polls ORDER BY started_at"
    ).fetchall()
    events: dict[tuple[str, str], list[datetime]] = {}
    modes: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for source, key, when, mode in conn.execute(
        "SELECT source, json_extract(body, '$.data.key'), time, "
        "json_extract(body, '$.data.poll.mode') FROM events ORDER BY sequence"
    ):
        at = parse_iso(when) or quiet_from
        events.setdefault((source, key), []).append(at)
        modes.setdefault((source, key), []).append((at, mode))
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
            page = args.cta_page_size if source == "ctas" else PAGE[source]
            floor_route = records / (page * args.rpm)
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
    fast: dict[str, Any] = {}
    if args.fast_lane:
        fast["fast_lane"] = fast_lane_figures(changes, baseline_end, sweeps, modes, receipts)
        fast["fast_lane"]["diagnosis"] = diagnosis(
            sweeps, incr, transport, lag, tenant_times, stalls
        )
    return {
        **fast,
        "tenant": {"companies": args.companies, "ctas": args.ctas, "build_s": args.build_s},
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


def fast_lane_figures(
    changes: list[Any],
    baseline_end: dict[str, datetime],
    sweeps: dict[str, list[tuple[datetime, datetime]]],
    modes: dict[tuple[str, str], list[tuple[datetime, str]]],
    receipts: list[tuple[datetime, Any]],
) -> dict[str, Any]:
    """Fast-lane detection latency during the CTA source's full sweeps and without any
    sweep, and the ratio of the p95s against :data:`TARGET_RATIO`.

    - *during*: the change was made while a full sweep of the CTA source (not its
      baseline) was running; the change may belong to either source, as both fast
      lanes share the event loop and the API budget with that sweep;
    - *without*: no full sweep of any source was running from the change until its
      event (a change whose wait a sweep start cut into counts in neither group).

    Latency is the change in the tenant -> its event committed in the store, and ->
    its webhook received. Deletes are reported apart (read every second round).
    """
    after = max(baseline_end.values(), default=None) if len(baseline_end) == len(SELECT) else None
    cta_sweeps = sweeps.get("ctas", [])[1:]
    every_sweep = [w for windows in sweeps.values() for w in windows]
    hooks: dict[tuple[str, str], list[datetime]] = {}
    for at, body in receipts:
        data = body.get("data") or {}
        hooks.setdefault((str(data.get("source")), str(data.get("key"))), []).append(at)
    groups: dict[str, dict[str, list[float]]] = {
        g: {"committed": [], "webhook": [], "ctas": [], "companies": [], "deleted": []}
        for g in ("during", "without")
    }
    found_by: dict[str, int] = {}
    missed = 0
    for change in changes:
        source = OBJECT_SOURCE.get(change.object)
        made = parse_iso(change.time)
        if source is None or made is None or after is None or made < after:
            continue
        watched = set(SELECT[source]) - {"ModifiedDate"}
        if change.change == "updated" and not watched & set(change.fields):
            continue
        first = next(((t, m) for t, m in modes.get((source, change.key), []) if t >= made), None)
        if first is None:
            missed += 1
            continue
        seen, mode = first
        if any(s <= made <= f for s, f in cta_sweeps):
            group = "during"
            if change.change != "deleted":
                found_by[mode] = found_by.get(mode, 0) + 1
        elif not any(s <= seen and made <= f for s, f in every_sweep):
            group = "without"
        else:
            continue
        latency = (seen - made).total_seconds()
        figures = groups[group]
        if change.change == "deleted":
            figures["deleted"].append(latency)
            continue
        figures["committed"].append(latency)
        figures[source].append(latency)
        delivered = next((t for t in hooks.get((source, change.key), []) if t >= made), None)
        if delivered is not None:
            figures["webhook"].append((delivered - made).total_seconds())
    out: dict[str, Any] = {
        "poll_every": FAST_EVERY,
        "cta_sweeps": [
            {"start": s.strftime("%H:%M:%S"), "minutes": round((f - s).total_seconds() / 60, 2)}
            for s, f in cta_sweeps
        ],
    }
    for group, figures in groups.items():
        out[group] = {
            "committed_s": summary(figures["committed"]),
            "webhook_s": summary(figures["webhook"]),
            "by_source_committed_s": {k: summary(figures[k]) for k in ("companies", "ctas")},
            "deletes_committed_s": summary(figures["deleted"]),
        }
    out["during"]["found_by_poll_mode"] = found_by
    out["changes_without_event"] = missed
    ratios = {}
    for kind in ("committed_s", "webhook_s"):
        during, without = out["during"][kind].get("p95"), out["without"][kind].get("p95")
        ratios[kind] = round(during / without, 2) if during and without else None
    out["p95_ratio_during_over_without"] = ratios
    out["target"] = {
        "p95_ratio_max": TARGET_RATIO,
        "met": ratios["committed_s"] is not None and ratios["committed_s"] <= TARGET_RATIO,
    }
    return out


def diagnosis(
    sweeps: dict[str, list[tuple[datetime, datetime]]],
    incr: list[tuple[str, int, int, datetime, datetime]],
    transport: Recording,
    lag: list[tuple[datetime, float]],
    tenant_times: list[tuple[datetime, str, float]],
    stalls: list[tuple[datetime, str]],
) -> dict[str, Any]:
    """Where a fast-lane read's time goes, during the CTA sweeps and outside any sweep:
    its whole duration and the wait before its first request (budget, a busy loop), in
    simulated seconds; in real ms, the tenant's reply time as the daemon sees it, the
    time the simulator itself spent on the read and on each sweep page (the rest of the
    reply time is queueing in the tenant), and the event loop's lateness."""
    cta = sweeps.get("ctas", [])[1:]
    every = [w for windows in sweeps.values() for w in windows[1:]]

    def group(at: datetime) -> str | None:
        if any(s <= at <= f for s, f in cta):
            return "during"
        return None if any(s <= at <= f for s, f in every) else "without"

    out: dict[str, dict[str, list[float]]] = {
        g: {
            "read_s": [],
            "calls_per_read": [],
            "before_first_request_s": [],
            "tenant_reply_ms": [],
            "tenant_busy_on_fast_read_ms": [],
            "tenant_busy_on_sweep_page_ms": [],
            "loop_late_ms": [],
        }
        for g in ("during", "without")
    }
    starts = sorted(at for at, _ in transport.reads)
    for _source, calls, _pages, s, f in incr:
        g = group(s)
        if g is None:
            continue
        out[g]["read_s"].append((f - s).total_seconds())
        out[g]["calls_per_read"].append(float(calls))
        first = next((at for at in starts if at >= s), None)
        if first is not None and first <= f:
            out[g]["before_first_request_s"].append((first - s).total_seconds())
    for at, spent in transport.reads:
        if (g := group(at)) is not None:
            out[g]["tenant_reply_ms"].append(spent * 1000)
    for at, late in lag:
        if (g := group(at)) is not None:
            out[g]["loop_late_ms"].append(late * 1000)
    for at, kind, spent in tenant_times:
        if kind != "other" and (g := group(at)) is not None:
            out[g][f"tenant_busy_on_{kind}_ms"].append(spent * 1000)
    figures: dict[str, Any] = {
        g: {k: summary(v) for k, v in parts.items()} for g, parts in out.items()
    }
    for g in ("during", "without"):
        held: dict[str, int] = {}
        for at, where in stalls:
            if group(at) == g:
                held[where] = held.get(where, 0) + 1
        top = sorted(held.items(), key=lambda item: -item[1])[:6]
        figures[g]["loop_held_over_120ms_where_10ms_samples"] = dict(top)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=100_000)
    parser.add_argument("--ctas", type=int, default=200_000)
    parser.add_argument("--minutes", type=float, help="simulated minutes of changes (25; 14)")
    parser.add_argument("--scale", type=float, help="simulated seconds per real one (10; 3)")
    parser.add_argument("--mutations-per-min", type=float, default=30)
    parser.add_argument("--rpm", type=int, default=100)
    parser.add_argument("--rpd", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--fast-lane",
        action="store_true",
        help=f'sources on the fast lane (poll_every = "{FAST_EVERY}") instead of 1-minute crons; '
        "prints fast-lane latency during CTA sweeps and without a sweep",
    )
    parser.add_argument("--full-sweep", help="the sources' full_sweep cron (*/10; */3)")
    parser.add_argument(
        "--cta-page-size", type=int, help="CTAs per sweep page (1000; the route's default 5000)"
    )
    parser.add_argument("--settle-s", type=float, help="simulated s after the changes (150; 60)")
    parser.add_argument("--out", type=Path, help="default bench/results/load[-fastlane].json")
    args = parser.parse_args()
    for name, value in (FAST_DEFAULTS if args.fast_lane else CRON_DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    name = "load-fastlane.json" if args.fast_lane else "load.json"
    out = args.out or ROOT / "bench" / "results" / name
    configure_logging(level="error", stream=sys.stderr)
    start = datetime.now(UTC).replace(minute=0, second=5, microsecond=0)
    clock = ScaledClock(args.scale, start)
    t_build = time.monotonic()
    proc, conn, base_url = start_tenant(args, clock)
    args.build_s = round(time.monotonic() - t_build, 1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = asyncio.run(run(args, Path(tmp), clock, base_url, conn))
    finally:
        conn.send("stop")
        proc.join(30)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if args.fast_lane:
        print(fast_lane_line(results["fast_lane"], args.ctas))


def fast_lane_line(fast: dict[str, Any], ctas: int) -> str:
    """The target in one line: p95 during the CTA sweeps / without a sweep."""

    def show(group: str) -> str:
        f = fast[group]["committed_s"]
        return f"n={f.get('n')} p50 {f.get('p50')} s p95 {f.get('p95')} s max {f.get('max')} s"

    ratio = fast["p95_ratio_during_over_without"]["committed_s"]
    verdict = "met" if fast["target"]["met"] else "NOT met"
    return (
        f"fast lane ({fast['poll_every']}), change -> event committed (simulated s): "
        f"during a {ctas:,}-CTA sweep {show('during')}; without a sweep {show('without')}; "
        f"p95 ratio {ratio}x (target <= {TARGET_RATIO}x: {verdict})"
    )


if __name__ == "__main__":
    main()
