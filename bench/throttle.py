"""Time one throttle decision's store query on a long delivered history.

    .venv/bin/python bench/throttle.py [--rows 100000]

A store with ``--rows`` delivered deliveries of one rule and sink (500 records, one
event every 30 s); prints milliseconds per ``Outbox.throttle_usage`` call (the store
query behind one throttle decision) for ``per = "rule"`` and ``per = "key"``, 1 h window.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from watcher.clock import FakeClock
from watcher.dates import format_utc
from watcher.store.db import migrate, open_database
from watcher.store.outbox import Outbox

CALLS = 200


def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(Path(tmp) / "w.db")
        migrate(db, FakeClock().now)
        start = datetime(2026, 10, 1, tzinfo=UTC)
        conn = db.conn
        conn.execute("BEGIN")
        for i in range(1, rows + 1):
            at = format_utc(start + timedelta(seconds=30 * i))
            conn.execute(
                "INSERT INTO events (sequence, id, type, source, subject, time, body) "
                "VALUES (?, ?, 'gainsight.company.updated', 'companies', ?, ?, '{}')",
                (i, f"e{i}", f"K{i % 500}", at),
            )
            conn.execute(
                "INSERT INTO deliveries (id, event_sequence, event_id, rule, sink, order_key, "
                "status, attempts, next_attempt_at, created_at, delivered_at) "
                "VALUES (?, ?, ?, 'arr-drop', 'crm', ?, 'delivered', 1, 0, ?, ?)",
                (f"d{i}", i, f"e{i}", f"companies:K{i % 500}", at, at),
            )
        conn.execute("COMMIT")
        outbox = Outbox(db)
        until = start + timedelta(seconds=30 * rows)
        for per, key in (("rule", None), ("key", "companies:K7")):
            began = time.perf_counter()
            for _ in range(CALLS):
                outbox.throttle_usage(
                    rule="arr-drop",
                    sink="crm",
                    after=format_utc(until - timedelta(hours=1)),
                    until=format_utc(until),
                    exclude_event="new",
                    order_key=key,
                    limit=5,
                )
            per_call = (time.perf_counter() - began) / CALLS * 1000
            print(f"throttle per={per}: {per_call:.3f} ms per decision, {rows} delivered rows")
        conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="time one throttle decision's store query")
    parser.add_argument("--rows", type=int, default=100_000, help="delivered rows in history")
    main(parser.parse_args().rows)
