"""The crash soak: SIGKILL the daemon at random moments and prove nothing was lost.

    python -m tests.reliability.soak --kills 20 --seed 1     # make soak
    python -m tests.reliability.soak --kills 3 --quick       # the form make test runs

What runs, all real processes on loopback:

1. ``watcher sim`` (a subprocess) - the simulated tenant; this process drives a
   continuous stream of random creates, updates and deletes through its admin API.
2. A webhook receiver (in this process) that records every request with its
   ``webhook-id`` and body.
3. The daemon (``watcher run --every S``: the real command with a sub-minute
   interval) polling the tenant incrementally and reading its delete logs every
   ``--every`` seconds, routing every change to the receiver.

The daemon is killed with SIGKILL ``--kills`` times, at random moments drawn from
``--seed`` (during start-up, mid-poll, mid-delivery), and restarted each time;
``PRAGMA integrity_check`` runs on the database after every kill. Then the
changes stop, the daemon catches up, and :mod:`tests.reliability.verify`
compares the tenant's ground truth, the store's events and the receiver's log:
0 changes without an event, 0 events without a delivery, duplicates only as
repeats of the same id. The summary is printed; the exit code is 1 on any
violation.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import re
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.soak_parts import (
    OBJECTS,
    SlowReceiver,
    SoakOptions,
    SoakReport,
    read_store,
    same_as_truth,
    write_config,
)
from tests.reliability.verify import check_deliveries, check_truth
from watcher.clock import SystemClock
from watcher.config import WatcherConfig, load_config
from watcher.core.normalize import normalize_record
from watcher.errors import StoreError
from watcher.gainsight import Budget, GainsightClient
from watcher.store.view import activity, integrity

_BANNER = re.compile(r"serving (http://127\.0\.0\.1:\d+)")


class Soak:
    def __init__(self, options: SoakOptions, folder: Path) -> None:
        self.o = options
        self.folder = folder
        self.rng = random.Random(options.seed)
        self.report = SoakReport(options)
        self.key = "soak-" + secrets.token_hex(12)
        self.env = {
            **os.environ,
            "SOAK_GAINSIGHT_KEY": self.key,
            "GAINSIGHT_ACCESS_KEY": self.key,  # what `watcher sim` accepts
            "SOAK_HOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        }
        self.env.pop("NOTIFY_SOCKET", None)
        self.receiver = SlowReceiver(options.receiver_delay_s)
        self.env["SOAK_HOOK_URL"] = self.receiver.url
        self.sim: asyncio.subprocess.Process | None = None
        self.base_url = ""
        self.daemon: asyncio.subprocess.Process | None = None
        self.runs = 0
        self.db = folder / "watcher.db"

    # processes

    async def start_sim(self) -> None:
        with (self.folder / "sim.err").open("wb") as err:  # the child keeps its own copy
            self.sim = await asyncio.create_subprocess_exec(
                self.o.python, "-m", "watcher", "sim", "--port", "0",
                "--companies", str(self.o.companies), "--ctas", str(self.o.ctas),
                "--goals", "0", "--seed", str(self.o.seed), "--requests-per-minute", "1000000",
                env=self.env, stdout=asyncio.subprocess.PIPE, stderr=err,
            )  # fmt: skip
        assert self.sim.stdout is not None
        line = await asyncio.wait_for(self.sim.stdout.readline(), 30)
        match = _BANNER.search(line.decode())
        if match is None:
            raise RuntimeError(f"watcher sim did not start: {line!r}")
        self.base_url = match.group(1)
        await self.admin(
            "POST",
            "/__sim/options",
            {"options": {"requests_per_day": 10**9}, "faults": {"latency": self.o.latency_s}},
        )

    async def start_daemon(self) -> None:
        self.runs += 1
        with (self.folder / f"daemon-{self.runs:02d}.log").open("wb") as out:
            self.daemon = await asyncio.create_subprocess_exec(
                self.o.python, "-m", "watcher",
                "--config", str(self.folder / "watcher.toml"),
                "run", "--every", str(self.o.every_s), "--grace", "5",
                env=self.env, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip

    async def pick_moment(self) -> str:
        """Wait for the next kill: a random delay, or (targeted) until the store shows a
        poll running or deliveries pending, then a random few milliseconds more."""
        o = self.o
        target = self.rng.choice(["random", "mid-poll", "mid-delivery"])
        deadline = time.monotonic() + self.rng.uniform(o.min_gap_s, o.max_gap_s)
        if target == "random":
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            return await asyncio.to_thread(self._phase)
        await asyncio.sleep(o.min_gap_s)
        while time.monotonic() < deadline + o.max_gap_s:
            if await asyncio.to_thread(self._phase) == target:
                await asyncio.sleep(self.rng.uniform(0.0, 0.03))
                return target
            await asyncio.sleep(0.005)
        return await asyncio.to_thread(self._phase)

    async def kill_daemon(self, phase: str) -> None:
        proc = self.daemon
        assert proc is not None
        if proc.returncode is not None:
            self.report.verdict.fail(f"daemon run {self.runs} exited by itself ({proc.returncode})")
            return
        self.report.kill_phases[phase] = self.report.kill_phases.get(phase, 0) + 1
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        self.report.kills += 1
        verdict = await asyncio.to_thread(integrity, self.db)
        self.report.integrity_checks += 1
        if verdict != "ok":
            self.report.verdict.fail(f"integrity_check after kill {self.report.kills}: {verdict}")

    def _phase(self) -> str:
        """Roughly what the daemon was doing when killed (from the store)."""
        try:
            polling, queued = activity(self.db)
        except StoreError:
            return "starting"
        if polling:
            return "mid-poll"
        return "mid-delivery" if queued else "idle"

    async def stop_daemon(self) -> None:
        proc = self.daemon
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                self.report.verdict.fail("the daemon did not stop on SIGTERM within 30s")

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.request(
                method, self.base_url + path, json=body, headers={"Accesskey": self.key}
            )
        response.raise_for_status()
        return response.json()["data"]

    # phases

    async def wait_for(self, what: str, predicate: Any, within: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < within:
            if await asyncio.to_thread(predicate):
                return time.monotonic() - start
            if self.daemon is not None and self.daemon.returncode is not None:
                raise RuntimeError(f"the daemon exited ({self.daemon.returncode}) while {what}")
            await asyncio.sleep(0.2)
        raise TimeoutError(f"timed out after {within:.0f}s {what}")

    def _baselined(self) -> bool:
        try:
            state = read_store(self.db)["baseline"]
        except (StoreError, OSError):
            return False
        return all(state.get(s) for s in OBJECTS)

    async def mutate(self, stop: asyncio.Event) -> None:
        interval = 1.0 / self.o.mutations_per_s
        while not stop.is_set():
            await self.admin("POST", "/__sim/mutate", {"random": 1})
            self.report.mutations += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def truth(self) -> dict[str, dict[str, Any]]:
        """The tenant's final state, read through the real client (no mutations run)."""
        config = load_config(self.folder / "watcher.toml")
        clock = SystemClock()
        out: dict[str, dict[str, Any]] = {}
        async with httpx.AsyncClient(timeout=30) as http:
            client = GainsightClient(
                http,
                base_url=self.base_url,
                access_key=self.key,
                budget=Budget(10**6, 10**9, clock),
                clock=clock,
            )
            for source in config.sources:
                records = await client.read_all(source)
                out[source.name] = {  # as the engine reads them: normalized once
                    str(r[source.key]): normalize_record(r, source.date_fields) for r in records
                }
        return out

    def _caught_up(self, final: Mapping[str, Mapping[str, Any]], config: WatcherConfig) -> bool:
        try:
            data = read_store(self.db)
        except StoreError:
            return False
        if any(status == "pending" for _, status in data["outbox"]):
            return False
        received = {r.headers.get("webhook-id") for r in self.receiver.ok}
        return all(
            event_id in received for event_id, status in data["outbox"] if status == "delivered"
        ) and same_as_truth(data["snapshots"], final, config.sources)

    async def run(self) -> SoakReport:
        started = time.monotonic()
        write_config(self.folder, "http://127.0.0.1:1", self.receiver.url)
        async with self.receiver:
            await self.start_sim()
            try:
                write_config(self.folder, self.base_url, self.receiver.url)
                await self._run()
            finally:
                await self.stop_daemon()
                if self.sim is not None and self.sim.returncode is None:
                    self.sim.send_signal(signal.SIGTERM)
                    await self.sim.wait()
        self.report.wall_s = time.monotonic() - started
        return self.report

    async def _run(self) -> None:
        o, report = self.o, self.report
        await self.start_daemon()
        await self.wait_for("taking the baseline", self._baselined, 60)
        state0 = read_store(self.db)["snapshots"]
        seq0 = (await self.admin("GET", "/__sim/changes?after=0"))["last_seq"]
        stop = asyncio.Event()
        await self.admin(
            "POST", "/__sim/options", {"faults": {"mutations_between_pages": o.between_pages}}
        )
        driver = asyncio.create_task(self.mutate(stop))
        try:
            for _ in range(o.kills):
                await self.kill_daemon(await self.pick_moment())
                await self.start_daemon()
                report.restarts += 1
            await asyncio.sleep(self.rng.uniform(o.min_gap_s, o.max_gap_s))
        finally:
            stop.set()
            await driver
            await self.admin("POST", "/__sim/options", {"faults": {"mutations_between_pages": 0}})
        stopped = time.monotonic()
        log = (await self.admin("GET", f"/__sim/changes?after={seq0}"))["changes"]
        report.tenant_changes = len(log)
        final = await self.truth()
        config = load_config(self.folder / "watcher.toml")
        try:
            await self.wait_for("catching up", lambda: self._caught_up(final, config), o.catch_up_s)
            report.catch_up_s = time.monotonic() - stopped
        except TimeoutError as exc:
            report.verdict.fail(str(exc))
        await self.stop_daemon()
        self._verdict(state0, final, log, config)

    def _verdict(
        self,
        state0: Mapping[str, Mapping[str, Any]],
        final: Mapping[str, Mapping[str, Any]],
        log: Sequence[Mapping[str, Any]],
        config: WatcherConfig,
    ) -> None:
        verdict = self.report.verdict
        data = read_store(self.db)
        for source in config.sources:
            deleted = {
                str(c["key"])
                for c in log
                if c["change"] == "deleted" and c["object"] == OBJECTS[source.name]
            }
            check_truth(
                verdict,
                source.name,
                state0=state0.get(source.name, {}),
                final=final[source.name],
                stored=data["snapshots"].get(source.name, {}),
                events=data["events"],
                deleted_in_log=deleted,
                ignored=source.ignore_fields,
            )
        received = [
            (r.headers.get("webhook-id", ""), r.body, r.status) for r in self.receiver.received
        ]
        check_deliveries(verdict, data["events"], data["outbox"], received)
        self.report.torn = sum(1 for r in self.receiver.received if r.status == 400)
        result = integrity(self.db)
        self.report.integrity_checks += 1
        if result != "ok":
            verdict.fail(f"final integrity_check: {result}")
        for log_file in sorted(self.folder.glob("daemon-*.log")):
            text = log_file.read_text(errors="replace")
            if "Traceback" in text:
                verdict.fail(f"{log_file.name}: a traceback in the daemon's output")
            if self.key in text:
                verdict.fail(f"{log_file.name}: the access key appears in the log")


async def run_soak(options: SoakOptions) -> SoakReport:
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
        return await Soak(options, options.workdir).run()
    with tempfile.TemporaryDirectory(prefix="watcher-soak-") as tmp:
        return await Soak(options, Path(tmp)).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.soak",
        description="Crash soak: SIGKILL the daemon at random moments; prove nothing is lost.",
    )
    parser.add_argument("--kills", type=int, default=20, metavar="N")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="default: random")
    parser.add_argument("--companies", type=int, default=1500, metavar="N")
    parser.add_argument("--ctas", type=int, default=300, metavar="N")
    parser.add_argument("--mutations-per-s", type=float, default=8.0, metavar="M")
    parser.add_argument("--every", type=float, default=0.5, metavar="SECONDS")
    parser.add_argument("--max-gap", type=float, default=3.0, metavar="SECONDS")
    parser.add_argument("--quick", action="store_true", help="small tenant, short gaps")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR", help="keep files in DIR")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    options = SoakOptions(
        kills=args.kills,
        seed=seed,
        companies=200 if args.quick else args.companies,
        ctas=60 if args.quick else args.ctas,
        mutations_per_s=args.mutations_per_s,
        every_s=args.every,
        max_gap_s=1.5 if args.quick else args.max_gap,
        workdir=args.keep,
    )
    from watcher.logging import configure_logging

    configure_logging(level="warning", stream=sys.stderr)
    try:
        report = asyncio.run(run_soak(options))
    except (RuntimeError, TimeoutError, OSError, httpx.HTTPError) as exc:
        print(f"soak seed={seed}: ABORTED: {exc}", file=sys.stderr, flush=True)
        return 1
    print(report.summary(), flush=True)
    return 0 if report.ok else 1


__all__ = ["Soak", "SoakOptions", "SoakReport", "read_store", "run_soak", "write_config"]


if __name__ == "__main__":
    raise SystemExit(main())
