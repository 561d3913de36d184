"""How fast the simulated tenant serves: startup with N companies, then a full offset read
in 5000-record pages over loopback (rate limit lifted), compared with the 0.6 s per call
that the real API's 100 requests/minute allow.

    .venv/bin/python bench/sim_serve.py [--companies 100000]
"""

from __future__ import annotations

import argparse
import time

import httpx

from watcher.testing.sim import running_sim


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--companies", type=int, default=100_000)
    args = parser.parse_args()
    began = time.perf_counter()
    with running_sim(
        companies=args.companies, ctas=2500, goals=300, requests_per_minute=10**9
    ) as sim:
        startup = time.perf_counter() - began
        select = [
            "Gsid",
            "Name",
            "Arr",
            "Mrr",
            "Stage",
            "Status",
            "Csm",
            "RenewalDate",
            "ModifiedDate",
        ]
        times = []
        total = 0
        with httpx.Client(base_url=sim.base_url, headers=sim.headers, timeout=60) as http:
            offset = 0
            while True:
                t0 = time.perf_counter()
                reply = http.post(
                    "/v1/data/objects/query/Company",
                    json={"select": select, "limit": 5000, "offset": offset},
                )
                rows = reply.json()["data"]["records"]
                times.append(time.perf_counter() - t0)
                total += len(rows)
                offset += 5000
                if len(rows) < 5000:
                    break
            since = "2020-01-01"
            sorted_body = {
                "select": select,
                "limit": 5000,
                "offset": 0,
                "where": {
                    "conditions": [
                        {"name": "ModifiedDate", "alias": "A", "operator": "GTE", "value": [since]}
                    ]
                },
                "orderBy": {"ModifiedDate": "asc", "Gsid": "asc"},
            }
            t0 = time.perf_counter()
            assert http.post("/v1/data/objects/query/Company", json=sorted_body).status_code == 200
            first_sorted = time.perf_counter() - t0
            t0 = time.perf_counter()
            http.post("/v1/data/objects/query/Company", json={**sorted_body, "offset": 5000})
            next_sorted = time.perf_counter() - t0
    print(f"startup with {args.companies} companies: {startup:.2f} s")
    print(
        f"full read: {total} records in {len(times)} pages, {sum(times):.2f} s "
        f"(mean {sum(times) / len(times) * 1000:.0f} ms/page, max {max(times) * 1000:.0f} ms)"
    )
    print(
        f"filtered+sorted page: first {first_sorted * 1000:.0f} ms, "
        f"next {next_sorted * 1000:.0f} ms (cached)"
    )
    print(f"rate-limit floor for the same read at 100/min: {len(times) * 0.6:.1f} s")


if __name__ == "__main__":
    main()
