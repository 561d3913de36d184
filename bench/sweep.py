"""Full-sweep benchmark: baseline, steady state (no change) and 1% changed.

Feeds N Company-like records two ways:

- ``memory``: pages are rendered to JSON bytes on demand (never all held), parsed and
  and swept as the Gainsight client hands them over (as received: the engine
  normalizes each record once);
- ``loopback``: the simulated tenant (``watcher sim``) in a child process, read over
  127.0.0.1 by the real Gainsight client.

For each it prints records/s, the ratio to a *floor* measured in the same run
(producing/fetching and JSON-parsing the same pages and nothing else) and the
peak RSS of each sweep (on Linux the high-water mark is reset before each one).
``--rss-scan 250000,1000000`` runs the memory case in child processes for several
N to show peak RSS stays flat.

    .venv/bin/python bench/sweep.py --n 1000000            # both feeds
    .venv/bin/python bench/sweep.py --n 200000 --feed memory
    .venv/bin/python bench/sweep.py --rss-scan 250000,1000000,2000000

Targets (issue 3): steady state within 2x of the floor over loopback, within 4x in
memory; peak RSS <= 200 MB and flat as N grows; baseline >= 40,000 records/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import structlog

from watcher.clock import SystemClock
from watcher.config import SourceConfig
from watcher.gainsight import Budget, GainsightClient, Priority
from watcher.gainsight.query import Condition, Direction
from watcher.poll import Poller
from watcher.store import Store
from watcher.testing.memory import MemoryPage

PAGE = 5000
BASE_MS = 1_763_000_000_000
SELECT = (
    "Gsid", "Name", "Arr", "Mrr", "Employees", "Industry", "Stage", "Status", "Csm",
    "RenewalDate", "OriginalContractDate", "TickerSymbol", "CreatedDate", "ModifiedDate",
)  # fmt: skip


def source_config(page_size: int = PAGE) -> SourceConfig:
    return SourceConfig(
        name="companies",
        kind="company",
        select=SELECT,
        ignore_fields=("ModifiedDate",),
        page_size=page_size,
    )


def reset_peak_rss() -> None:
    """Linux: restart the high-water mark, so each scenario reports its own peak."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- in-memory feed -----------------------------------------------------------------


def key_of(i: int) -> str:
    return f"1P02{i:032d}"


class MemoryFeed:
    """N records rendered page by page as JSON bytes, like a server would send them."""

    def __init__(self, n: int, page_size: int = PAGE) -> None:
        self.n = n
        self.page_size = page_size
        self.changed: Callable[[int], bool] = lambda _i: False

    def record_json(self, i: int) -> str:
        bump = 1 if self.changed(i) else 0
        return (
            f'{{"Gsid":"{key_of(i)}","Name":"Company {i}","Arr":{1000.0 * (i % 997) + bump:.1f},'
            f'"Mrr":{(i % 97) * 10.5},"Employees":{i % 5000},'
            f'"Industry":"1I00IND{i % 13:029d}","Stage":"1I00STG{i % 7:029d}",'
            f'"Status":"1I00STA{i % 3:029d}","Csm":"1P01USR{i % 50:029d}",'
            f'"RenewalDate":{BASE_MS + (i % 365) * 86_400_000},'
            f'"OriginalContractDate":{BASE_MS - (i % 700) * 86_400_000},'
            f'"TickerSymbol":"T{i % 10000}","CreatedDate":{BASE_MS - i},'
            f'"ModifiedDate":{BASE_MS + bump * 60_000}}}'
        )

    def page_bytes(self, number: int, keys: Sequence[int] | None = None) -> bytes:
        if keys is None:
            start = (number - 1) * self.page_size
            keys = range(start, min(start + self.page_size, self.n))
        body = ",".join(self.record_json(i) for i in keys)
        return ('{"result":true,"data":{"records":[' + body + "]}}").encode()

    def pages(self) -> int:
        return -(-self.n // self.page_size)

    def floor(self) -> None:
        """Produce and parse every page, nothing else."""
        for number in range(1, self.pages() + 1):
            json.loads(self.page_bytes(number))

    async def iter_pages(
        self,
        source: SourceConfig,
        *,
        conditions: Sequence[Condition] = (),
        order_by: Mapping[str, Direction] | None = None,
        priority: Priority = Priority.LOW,
    ) -> AsyncIterator[MemoryPage]:
        for number in range(1, self.pages() + 1):
            records = json.loads(self.page_bytes(number))["data"]["records"]
            yield MemoryPage(records, number)

    async def fetch_by_keys(
        self, source: SourceConfig, keys: Sequence[str], *, priority: Priority = Priority.HIGH
    ) -> list[dict[str, Any]]:
        wanted = [int(k[4:]) for k in keys if int(k[4:]) < self.n]
        if not wanted:
            return []
        records = json.loads(self.page_bytes(0, wanted))["data"]["records"]
        return list(records)

    async def deleted_since(
        self, source: SourceConfig, since: datetime, *, priority: Priority = Priority.HIGH
    ) -> list[Any]:
        return []


# -- running one scenario -----------------------------------------------------------


async def sweep(store: Store, client: Any, label: str) -> tuple[float, int, int]:
    poller = Poller(store, client, host="bench", clock=SystemClock(), max_kept_events=0)
    gc.collect()
    reset_peak_rss()
    t0 = time.perf_counter()
    result = await poller.poll(source_config(), "full", allow_mass_delete=True)
    elapsed = time.perf_counter() - t0
    changed = result.created + result.updated + result.deleted
    print(
        f"  {label:<10} {result.records:>9,} records in {elapsed:7.2f}s = "
        f"{result.records / elapsed:>9,.0f} rec/s   changes {changed:,}   "
        f"peak RSS {peak_rss_mb():.0f} MB",
        flush=True,
    )
    return elapsed, result.records, changed


def report(floor_s: float, n: int, results: dict[str, tuple[float, int, int]]) -> None:
    print(f"  floor      {n:>9,} records in {floor_s:7.2f}s = {n / floor_s:>9,.0f} rec/s")
    for label, (elapsed, _, _) in results.items():
        print(f"  ratio {label:<10} {elapsed / floor_s:5.2f}x floor")


async def bench_memory(n: int, db_dir: Path) -> None:
    print(f"memory feed, N = {n:,}, page {PAGE}")
    feed = MemoryFeed(n)
    t0 = time.perf_counter()
    feed.floor()
    floor_s = time.perf_counter() - t0
    store = Store.open(db_dir / "memory.db")
    results = {"baseline": await sweep(store, feed, "baseline")}
    results["steady"] = await sweep(store, feed, "steady")
    feed.changed = lambda i: i % 100 == 42
    results["1% changed"] = await sweep(store, feed, "1% changed")
    store.close()
    t0 = time.perf_counter()
    feed.floor()
    floor_s = min(floor_s, time.perf_counter() - t0)
    report(floor_s, n, results)


# -- loopback feed ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_up(base: str, key: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(timeout=5, headers={"Accesskey": key}) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(base + "/__sim/stats")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("the simulated tenant did not come up")


async def loopback_floor(base: str, key: str, n: int) -> float:
    """Fetch and parse the same pages the sweep reads, nothing else."""
    src = source_config()
    body: dict[str, Any] = {"select": list(SELECT), "orderBy": {"Gsid": "asc"}, "limit": PAGE}
    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as http:
        offset = 0
        while True:
            body["offset"] = offset
            reply = await http.post(
                base + src.effective_path,
                content=json.dumps(body),
                headers={"Accesskey": key, "Content-Type": "application/json"},
            )
            records = json.loads(reply.content)["data"]["records"]
            if len(records) < PAGE:
                break
            offset += PAGE
            if offset % (8 * PAGE) == 0:
                gc.collect()  # as the poll engine does: replies sit in reference cycles
    return time.perf_counter() - t0


async def bench_loopback(n: int, db_dir: Path) -> None:
    print(f"loopback feed (watcher sim in a child process), N = {n:,}, page {PAGE}")
    port = free_port()
    key = "bench-key"
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, GAINSIGHT_ACCESS_KEY=key)
    cmd = [
        sys.executable, "-m", "watcher", "--log-level", "warning", "sim", "--port", str(port),
        "--companies", str(n), "--ctas", "0", "--goals", "0",
        "--requests-per-minute", "1000000",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)  # noqa: ASYNC220 - started once, before any timing
    try:
        await wait_up(base, key, limit_s=900)
        print(f"  (tenant of {n:,} companies up in {time.perf_counter() - t0:.0f}s)")
        floor_s = await loopback_floor(base, key, n)
        store = Store.open(db_dir / "loopback.db")
        clock = SystemClock()
        async with httpx.AsyncClient(timeout=120) as http:
            client = GainsightClient(
                http,
                base_url=base,
                access_key=key,
                budget=Budget(1_000_000, 100_000_000, clock),
                clock=clock,
            )
            results = {"baseline": await sweep(store, client, "baseline")}
            results["steady"] = await sweep(store, client, "steady")
            async with httpx.AsyncClient(timeout=600, headers={"Accesskey": key}) as admin:
                reply = await admin.post(base + "/__sim/mutate", json={"random": n // 100})
                reply.raise_for_status()
            results["1% changed"] = await sweep(store, client, "1% changed")
        store.close()
        floor_s = min(floor_s, await loopback_floor(base, key, n))
        report(floor_s, n, results)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def rss_scan(sizes: list[int]) -> None:
    print("peak RSS of the memory-fed 1% changed sweep by N:")
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--n", str(n), "--feed", "memory"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        peak = [line for line in out.splitlines() if "1% changed" in line and "peak" in line]
        print(f"  N = {n:>9,}: {peak[0].split('peak RSS')[-1].strip() if peak else '?'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--feed", choices=["memory", "loopback", "both"], default="both")
    parser.add_argument("--rss-scan", default=None, help="comma-separated N values")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.rss_scan:
        rss_scan([int(x) for x in args.rss_scan.split(",")])
        return
    with tempfile.TemporaryDirectory(prefix="watcher-bench-") as tmp:
        if args.feed in ("memory", "both"):
            asyncio.run(bench_memory(args.n, Path(tmp)))
        if args.feed in ("loopback", "both"):
            asyncio.run(bench_loopback(args.n, Path(tmp)))


if __name__ == "__main__":
    main()
