"""Full-sweep benchmark: `watcher poll companies --full` as a whole process against a fair floor.

A page server in its own process answers the MDA query route
(``POST /v1/data/objects/query/Company``, offset paging, the standard envelope with
``data.records``) from page bytes built once up front, as a real tenant's servers do
their work elsewhere. Against it, for each N:

- the **floor**: a process that fetches the same pages over loopback (httpx, the
  product's HTTP library, the same request bodies) and parses them with orjson,
  nothing else;
- the **product**: ``watcher poll companies --full`` as a subprocess (start-up counts)
  with its own config, rules and store: a **baseline** sweep into an empty store, a
  **steady** sweep (nothing changed; run three times, alternating with floor runs, the
  fastest counts) and a **1% changed** sweep (the server switches to a second set of
  page bytes in which every hundredth company has a new Arr and ModifiedDate; run
  three times, each time from the unchanged state and right after a floor run over the
  changed pages, the fastest of each side counts; the ratio of each run to the floor
  run just before it is printed too, with their median, which the machine's drift
  between minutes does not move).

The steady runs follow the baseline, which left a hint for each page's key window: their
pages are settled by the reply's digest (the summary's ``settled`` line), as a real
tenant's unchanged pages are from the second sweep on. The 1% changed runs have a change
on every page, so every page there is read and compared in full.

Both sides are timed the same way, spawn to exit, and the ratios are taken in the same
run. Peak RSS of each process comes from ``wait4``. The floor is the fastest of its
runs; the 1% changed ratio uses the floor over the changed pages. ``watcher --help``
start-up is printed on its own line. The server also answers ``Gsid IN [...]``
look-ups (delete confirmation) and any other offset/limit from records built on the
fly; it counts what it served, and anything it could not serve is printed.

    .venv/bin/python bench/sweep.py                    # 200,000 and 1,000,000 companies
    .venv/bin/python bench/sweep.py --n 200000
    .venv/bin/python bench/sweep.py --n 5000           # a quick check (a few seconds)

Targets (issue 11): steady <= 2.0x the floor at 200k and at 1M, 1% changed <= 2.5x,
baseline >= 60,000 records/s, peak RSS <= 150 MB and flat in N.

This replaces the in-memory and simulator-fed modes of issue 3: their floors included
building every page on the same two cores, which hid the product's own cost.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAGE = 5000
PATH = "/v1/data/objects/query/Company"
KEY = "bench-sweep-key"
BASE_MS = 1_763_000_000_000
SELECT = (
    "Gsid", "Name", "Arr", "Mrr", "Employees", "Industry", "Stage", "Status", "Csm",
    "RenewalDate", "OriginalContractDate", "TickerSymbol", "CreatedDate", "ModifiedDate",
)  # fmt: skip
STEADY_RUNS = 3
CHANGED_RUNS = 3
TARGETS = {"steady": 2.0, "baseline_rps": 60_000, "changed": 2.5, "rss_mb": 150}


# -- the records ------------------------------------------------------------------------


def key_of(i: int) -> str:
    return f"1P02{i:032d}"


def changed_one_in_100(i: int) -> bool:
    return i % 100 == 42


def record_json(i: int, changed: Callable[[int], bool]) -> str:
    """One Company row as the MDA query route sends it (dates as epoch milliseconds)."""
    bump = 1 if changed(i) else 0
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


def reply_bytes(rows: Sequence[int], changed: Callable[[int], bool], request_id: str) -> bytes:
    """A whole HTTP/1.1 200 response: headers and the envelope around the rows."""
    records = ",".join(record_json(i, changed) for i in rows)
    body = (
        f'{{"result":true,"errorCode":null,"errorDesc":null,"requestId":"{request_id}",'
        f'"data":{{"records":[{records}]}},"message":null}}'
    ).encode()
    return response(200, body, request_id)


def response(status: int, body: bytes, request_id: str) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nx-gs-request-id: {request_id}\r\n\r\n"
    )
    return head.encode() + body


def error_reply(status: int, code: str, desc: str) -> bytes:
    body = (
        f'{{"result":false,"errorCode":"{code}","errorDesc":"{desc}",'
        f'"requestId":"bench-error","data":null,"message":null}}'
    ).encode()
    return response(status, body, "bench-error")


# -- the page server (its own process) ---------------------------------------------------


class Pages:
    """Prebuilt responses for every offset page, one set per variant."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.sets: dict[str, list[bytes]] = {}
        self.variant = "same"
        self.served: dict[str, int] = {"prebuilt": 0, "built": 0, "by-key": 0, "refused": 0}
        self.refused: list[str] = []

    def predicate(self) -> Callable[[int], bool]:
        return changed_one_in_100 if self.variant == "changed" else (lambda _i: False)

    def build(self, variant: str) -> float:
        """Build ``variant``'s pages (once) and serve them from now on; seconds taken."""
        self.variant = variant
        if variant in self.sets:
            return 0.0
        t0 = time.perf_counter()
        changed = self.predicate()
        count = -(-self.n // PAGE)
        self.sets[variant] = [
            reply_bytes(range(p * PAGE, min((p + 1) * PAGE, self.n)), changed, f"{variant}-{p}")
            for p in range(count)
        ] + [reply_bytes((), changed, f"{variant}-end")]
        return time.perf_counter() - t0

    def answer(self, method: str, path: str, body: bytes) -> bytes:
        import orjson

        if method == "POST" and path == "/__bench/variant":
            seconds = self.build(orjson.loads(body)["variant"])
            return response(200, orjson.dumps({"built_s": seconds}), "admin")
        if method == "GET" and path == "/__bench/stats":
            stats = {"served": self.served, "refused": self.refused[:5]}
            return response(200, orjson.dumps(stats), "admin")
        if method != "POST" or path != PATH:
            return self.refuse(f"{method} {path}", 404, "GS_APIG_1000", "unknown route")
        try:
            query: dict[str, Any] = orjson.loads(body)
            offset, limit = int(query.get("offset", 0)), int(query["limit"])
        except (ValueError, KeyError, TypeError):
            return self.refuse(f"{path} body {body[:80]!r}", 400, "GSOBJ_1008", "bad body")
        order = query.get("orderBy")
        if order not in (None, {"Gsid": "asc"}):
            return self.refuse(f"orderBy {order!r}", 400, "GSOBJ_1008", "unsupported orderBy")
        where = query.get("where")
        if where:
            conditions = where.get("conditions") or []
            cond = conditions[0] if len(conditions) == 1 else {}
            if cond.get("name") != "Gsid" or cond.get("operator") != "IN":
                return self.refuse(f"where {where!r}"[:200], 400, "GSOBJ_1008", "unsupported")
            wanted = sorted({int(k[4:]) for k in cond.get("value", []) if k[:4] == "1P02"})
            rows = [i for i in wanted if i < self.n][offset : offset + limit]
            self.served["by-key"] += 1
            return reply_bytes(rows, self.predicate(), "by-key")
        pages = self.sets[self.variant]
        if limit == PAGE and offset % PAGE == 0:
            self.served["prebuilt"] += 1
            return pages[min(offset // PAGE, len(pages) - 1)]
        self.served["built"] += 1
        rows = list(range(min(offset, self.n), min(offset + limit, self.n)))
        return reply_bytes(rows, self.predicate(), "built")

    def refuse(self, what: str, status: int, code: str, desc: str) -> bytes:
        self.served["refused"] += 1
        self.refused.append(what)
        return error_reply(status, code, desc)


async def serve_connection(pages: Pages, reader: Any, writer: Any) -> None:
    """HTTP/1.1 with keep-alive, Content-Length bodies only (what httpx sends)."""
    import asyncio

    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            writer.write(pages.answer(method, target.split("?", 1)[0], body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def serve(n: int) -> None:
    """Build the unchanged pages, print ``ready PORT SECONDS``, serve until killed."""
    import asyncio

    pages = Pages(n)
    seconds = pages.build("same")

    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: serve_connection(pages, r, w), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        print(f"ready {port} {seconds:.2f}", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- the floor (its own process) -------------------------------------------------------------


def floor(base: str) -> None:
    """Fetch every page the sweep reads and parse it with orjson; nothing else."""
    import httpx
    import orjson

    body: dict[str, Any] = {"select": list(SELECT), "orderBy": {"Gsid": "asc"}, "limit": PAGE}
    headers = {"Accesskey": KEY, "Content-Type": "application/json"}
    total = 0
    t0 = time.perf_counter()
    with httpx.Client(base_url=base, timeout=120) as http:
        while True:
            body["offset"] = total
            records = orjson.loads(http.post(PATH, content=orjson.dumps(body), headers=headers)
                                   .content)["data"]["records"]  # fmt: skip
            total += len(records)
            if len(records) < PAGE:
                break
    print(total, f"{time.perf_counter() - t0:.3f}")


# -- the driver -----------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    rss_mb: float
    out: str


def timed(cmd: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Spawn to exit wall time and the child's own peak RSS (``wait4``)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, problems = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{problems}{text}")
    return Run(seconds, usage.ru_maxrss / 1024, text)


def watcher_command() -> list[str]:
    script = Path(sys.executable).with_name("watcher")
    return [str(script)] if script.exists() else [sys.executable, "-m", "watcher"]


def config_text(base: str, folder: Path) -> str:
    select = ", ".join(f'"{f}"' for f in SELECT)
    return f"""
[gainsight]
base_url = "{base}"
access_key_env = "BENCH_SWEEP_ACCESS_KEY"
requests_per_minute = 1000000
requests_per_day = 100000000
timeout_s = 120

[store]
path = "{folder / "watcher.db"}"

[rules]
paths = ["{folder / "rules"}"]

[[sources]]
name = "companies"
kind = "company"
select = [{select}]
ignore_fields = ["ModifiedDate"]

[sinks.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
"""


RULES = """
[[rules]]
name = "companies"
sources = ["companies"]
sinks = ["hook"]
"""


def admin(base: str, method: str, path: str, body: bytes | None = None) -> Any:
    import http.client
    import json

    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    data = conn.getresponse().read()
    conn.close()
    return json.loads(data)


def summary_field(out: str, label: str) -> str:
    for line in out.splitlines():
        if line.strip().startswith(label):
            return line.split()[1]
    return "?"


def bench(n: int, folder: Path) -> dict[str, float]:
    me = [sys.executable, os.path.abspath(__file__)]
    server = subprocess.Popen([*me, "--serve", "--n", str(n)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        ready = server.stdout.readline().split()
        if not ready or ready[0] != "ready":
            raise RuntimeError("the page server did not start")
        base = f"http://127.0.0.1:{ready[1]}"
        print(f"N = {n:,} companies, {-(-n // PAGE)} pages of {PAGE} "
              f"(page bytes built in {ready[2]} s)", flush=True)  # fmt: skip
        (folder / "rules").mkdir(parents=True)
        (folder / "rules" / "all.toml").write_text(RULES)
        config = folder / "watcher.toml"
        config.write_text(config_text(base, folder))
        env = dict(os.environ, BENCH_SWEEP_ACCESS_KEY=KEY)
        poll = [*watcher_command(), "--config", str(config), "--log-level", "warning"]
        poll += ["poll", "companies", "--full"]
        floor_cmd = [*me, "--floor", base]

        floors = [timed(floor_cmd)]
        if floors[0].out.split()[0] != str(n):
            raise RuntimeError(f"the floor read {floors[0].out.split()[0]} records, not {n}")
        baseline = timed(poll, env)
        # This machine's speed drifts (shared cores): floor and product runs alternate,
        # and the fastest of each is compared.
        steady = []
        for _ in range(STEADY_RUNS):
            floors.append(timed(floor_cmd))
            steady.append(timed(poll, env))
        floors.append(timed(floor_cmd))
        # Three 1% changed runs, each from the unchanged state (a sweep of the unchanged
        # pages between them puts it back), each right after a floor run over the
        # changed pages: as many runs on each side, the fastest of each count.
        changed_floors, changed_runs = [], []
        for n_run in range(CHANGED_RUNS):
            if n_run:
                admin(base, "POST", "/__bench/variant", b'{"variant": "same"}')
                timed(poll, env)
            admin(base, "POST", "/__bench/variant", b'{"variant": "changed"}')
            changed_floors.append(timed(floor_cmd))
            changed_runs.append(timed(poll, env))
        changed = min(changed_runs, key=lambda r: r.seconds)
        stats = admin(base, "GET", "/__bench/stats")
    finally:
        server.terminate()
        server.wait(timeout=30)

    floor_s = min(r.seconds for r in floors)
    changed_floor_s = min(r.seconds for r in changed_floors)
    steady_run = min(steady, key=lambda r: r.seconds)
    rss = max(r.rss_mb for r in (baseline, *steady, *changed_runs))
    runs = " ".join(f"{r.seconds:.2f}" for r in floors)
    inside = min(float(r.out.split()[1]) for r in floors)
    print(f"  floor          {floor_s:6.2f} s  {n / floor_s:>9,.0f} rec/s  "
          f"peak RSS {max(r.rss_mb for r in floors):4.0f} MB   (runs {runs}; "
          f"fetch and parse alone {inside:.2f} s)")  # fmt: skip
    print(f"  floor, changed {changed_floor_s:6.2f} s")
    rows = [
        ("baseline", baseline, floor_s, "created"),
        ("steady", steady_run, floor_s, "updated"),
        ("1% changed", changed, changed_floor_s, "updated"),
    ]
    for label, run, base_s, field in rows:
        print(
            f"  {label:<14} {run.seconds:6.2f} s  {n / run.seconds:>9,.0f} rec/s  "
            f"peak RSS {run.rss_mb:4.0f} MB   {run.seconds / base_s:5.2f}x floor   "
            f"{field} {summary_field(run.out, field)}"
        )
    print(f"  steady runs    {' '.join(f'{r.seconds:.2f}' for r in steady)} s")
    print(f"  changed runs   {' '.join(f'{r.seconds:.2f}' for r in changed_runs)} s; "
          f"floor, changed {' '.join(f'{r.seconds:.2f}' for r in changed_floors)} s")  # fmt: skip
    # Each run against the floor run just before it: the machine's drift between
    # minutes cancels out of these ratios (their median is printed beside the fastest).
    pairs = sorted(r.seconds / f.seconds for r, f in zip(changed_runs, changed_floors, strict=True))
    print(
        f"  changed, paired {' '.join(f'{x:.2f}x' for x in pairs)} "
        f"(median {pairs[len(pairs) // 2]:.2f}x)"
    )
    print(f"  page server    {stats['served']}", flush=True)
    if stats["refused"]:
        print(f"  REFUSED        {stats['refused']}")
    return {
        "steady": steady_run.seconds / floor_s,
        "baseline": baseline.seconds / floor_s,
        "changed": changed.seconds / changed_floor_s,
        "baseline_rps": n / baseline.seconds,
        "rss_mb": rss,
    }


def startup() -> None:
    runs = sorted(timed([*watcher_command(), "--help"]).seconds for _ in range(5))
    print(f"watcher --help start-up: {runs[len(runs) // 2]:.3f} s median, "
          f"{runs[0]:.3f} s min of {len(runs)}", flush=True)  # fmt: skip


def compile_package() -> None:
    """Write the package's bytecode once, as an install does: where
    PYTHONDONTWRITEBYTECODE is set, every ``watcher`` process would otherwise compile
    the whole package again (about 1 s of each measured run)."""
    spec = importlib.util.find_spec("watcher")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    where = next(iter(spec.submodule_search_locations))
    subprocess.run([sys.executable, "-m", "compileall", "-q", where], env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n",
        type=int,
        action="append",
        help="companies (repeat for several; default 200000 and 1000000)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor", metavar="BASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.n or [200_000, 1_000_000]
    if args.serve:
        serve(sizes[0])
        return
    if args.floor:
        floor(args.floor)
        return
    compile_package()
    startup()
    results = {}
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="watcher-sweep-") as tmp:
            results[n] = bench(n, Path(tmp))
    print("against issue 11's targets:")
    for n, r in results.items():
        print(
            f"  N = {n:>9,}: steady {r['steady']:.2f}x (<= {TARGETS['steady']}x), "
            f"1% changed {r['changed']:.2f}x (<= {TARGETS['changed']}x), "
            f"baseline {r['baseline']:.2f}x, {r['baseline_rps']:,.0f} rec/s "
            f"(>= {TARGETS['baseline_rps']:,}), peak RSS {r['rss_mb']:.0f} MB "
            f"(<= {TARGETS['rss_mb']})"
        )


if __name__ == "__main__":
    main()
