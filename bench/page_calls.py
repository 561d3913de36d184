"""Requests per full read: how paging behaves when the server caps pages below the
size asked for, and what a small source pays for not trusting an unproven short page.

    .venv/bin/python bench/page_calls.py [--companies 2500] [--cap 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from typing import Any

import httpx

from watcher.clock import FakeClock
from watcher.config import SourceConfig
from watcher.gainsight import Budget, GainsightClient
from watcher.logging import configure_logging
from watcher.testing.sim import running_sim

SOURCE = SourceConfig(name="companies", kind="company", select=("Gsid", "Name"))


async def reads(companies: int, **options: Any) -> list[tuple[int, int]]:
    """(rows, requests) of two consecutive full reads of ``companies`` records."""
    clock = FakeClock()
    with running_sim(
        companies=companies,
        ctas=0,
        goals=0,
        clock=clock,
        requests_per_minute=10**6,
        requests_per_day=10**8,
        **options,
    ) as sim:
        async with httpx.AsyncClient(timeout=60) as http:
            client = GainsightClient(
                http,
                base_url=sim.base_url,
                access_key=sim.access_key,
                budget=Budget(10**6, 10**8, clock),
                clock=clock,
            )
            out = []
            for _ in range(2):
                before = client.stats.requests
                rows = await client.read_all(SOURCE)
                out.append((len(rows), client.stats.requests - before))
            return out


async def run(args: argparse.Namespace) -> None:
    capped = await reads(args.companies, max_limit=args.cap, over_limit="clamp")
    print(f"{args.companies} companies, server caps pages at {args.cap}: {capped}")
    print(f"{args.companies} companies, no cap: {await reads(args.companies)}")
    print(f"50 companies (one short page): {await reads(50)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=2500, help="records (default 2500)")
    parser.add_argument("--cap", type=int, default=1000, help="rows a page (default 1000)")
    args = parser.parse_args()
    configure_logging(level="warning", stream=sys.stderr)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
