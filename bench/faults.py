"""Figures for the fault matrix (docs/reliability.md): the same runs as
tests/reliability/test_fault_matrix.py, with what each fault cost.

For every API fault: the random changes made, keys with a net change, events
committed, polls that failed (and their error), client retries and 429s, and the
verdict of tests/reliability/verify.py (violations must be 0).

    .venv/bin/python bench/faults.py [--seeds 1 2 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability.harness import e2e
from tests.reliability.test_fault_matrix import CASES
from watcher.logging import configure_logging


async def one(name: str, seed: int) -> dict[str, Any]:
    sim_settings, client_options, signal = CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        async with e2e(Path(tmp), seed=seed, client_options=client_options) as h:
            await h.baseline()
            for key, value in sim_settings.items():
                target = h.sim.tenant.faults if hasattr(h.sim.tenant.faults, key) else None
                setattr(target or h.sim.tenant.options, key, value)
            await h.rounds(3)
            failed_during = len(h.failures)
            h.sim.tenant.options.requests_per_minute = 1_000_000
            await h.settle()
            verdict = h.verdict()
            return {
                "case": name,
                "seed": seed,
                "tenant_changes": len(h.sim.tenant.changes(h.seq0)),
                "keys_changed": verdict.changed_keys,
                "events": len(h.store.list_events()),
                "failed_polls": failed_during,
                "first_error": (h.failures[0][:140] if h.failures else None),
                "retries": h.client.stats.retries,
                "http_429": h.client.stats.rate_limited,
                "signal_seen": signal(h),
                "violations": len(verdict.violations),
            }


async def main_async(seeds: list[int]) -> list[dict[str, Any]]:
    return [await one(name, seed) for name in CASES for seed in seeds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    configure_logging(level="critical", stream=sys.stderr)
    rows = asyncio.run(main_async(args.seeds))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "faults.json").write_text(json.dumps(rows, indent=2) + "\n")
    for r in rows:
        print(
            f"{r['case']:<48} seed {r['seed']}: {r['keys_changed']:>3} keys changed, "
            f"{r['events']:>3} events, {r['failed_polls']} failed polls, {r['retries']:>3} "
            f"retries, {r['http_429']:>3} x 429, violations {r['violations']}"
        )


if __name__ == "__main__":
    main()
