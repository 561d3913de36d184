"""Read-only figures for ``watcher status`` and the status page, in one snapshot.

Opens the file read-only (``mode=ro``): it never creates, migrates or locks the
database, so it works beside a running daemon (WAL) and when none runs. Times in
the store are ISO-8601 UTC strings (``format_utc``), compared as text.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from watcher.dates import format_utc
from watcher.store.db import classify
from watcher.store.usage import usage_figures

#: Gainsight error codes in a poll's error text: after "errorCode", or code-shaped
#: (``GS_2301``, ``COCKPIT_5102``).
_NAMED = re.compile(r"errorCode[\s:=]+([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)")
_CODE = re.compile(r"\b([A-Z][A-Z0-9]*_\d{3,5})\b")


def gainsight_code(error: str | None) -> str | None:
    """The Gainsight error code in ``error``, if any (pure)."""
    match = _NAMED.search(error or "") or _CODE.search(error or "")
    return match.group(1) if match else None


@dataclass
class StoreFigures:
    """Everything status shows that the store knows, keyed by source / rule / sink name."""

    exists: bool = True
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    sinks: dict[str, dict[str, Any]] = field(default_factory=dict)
    pauses: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    api: dict[str, int] = field(default_factory=dict)
    last_events: list[dict[str, Any]] = field(default_factory=list)
    schedule: dict[tuple[str, str], str] = field(default_factory=dict)


def read_figures(
    path: Path, *, sources: Iterable[str], rules: Iterable[str], sinks: Iterable[str], now: datetime
) -> StoreFigures:
    """The figures for the named sources, rules and sinks as of ``now``."""
    if not path.exists():
        return StoreFigures(exists=False)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise classify(exc, "open for status") from None
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "events" not in tables:
            return StoreFigures()
        conn.execute("BEGIN")  # one snapshot for every query below
        return _read(
            conn, tables, sources=list(sources), rules=list(rules), sinks=list(sinks), now=now
        )
    except sqlite3.Error as exc:
        raise classify(exc, "read status") from None
    finally:
        conn.close()


def _read(
    conn: sqlite3.Connection,
    tables: set[str],
    *,
    sources: list[str],
    rules: list[str],
    sinks: list[str],
    now: datetime,
) -> StoreFigures:
    out = StoreFigures()
    hour = format_utc(now - timedelta(hours=1))
    day = format_utc(now - timedelta(days=1))
    hours = [format_utc(now - timedelta(hours=h))[:13] for h in range(23, -1, -1)]
    events = _events_last_day(conn, hour, day)
    for name in sources:
        out.sources[name] = _source(conn, name)
        last_hour, last_day, per_hour = events.get(name, (0, 0, {}))
        out.sources[name].update(
            events_last_hour=last_hour,
            events_last_day=last_day,
            events_per_hour=[per_hour.get(h, 0) for h in hours],
        )
    first = _first_rowid_since(conn, day)
    by_rule = {
        str(r[0]): r[1:]
        for r in conn.execute(
            "SELECT rule, COUNT(DISTINCT event_id), COALESCE(SUM(status = 'delivered'), 0), "
            "COALESCE(SUM(status = 'suppressed'), 0) FROM deliveries WHERE rowid >= ? "
            "GROUP BY rule",
            (first,),
        )
    }
    for name in rules:
        matches, delivered, suppressed = by_rule.get(name, (0, 0, 0))
        out.rules[name] = {
            "matches_last_day": int(matches),
            "delivered_last_day": int(delivered),
            "suppressed_last_day": int(suppressed),
        }
    by_sink = {
        str(r[0]): r[1:]
        for r in conn.execute(
            "SELECT sink, COALESCE(SUM(status = 'delivered'), 0), "
            "COALESCE(SUM(status = 'dead'), 0) FROM deliveries WHERE rowid >= ? GROUP BY sink",
            (first,),
        )
    }
    pending = {
        str(r[0]): r[1:]
        for r in conn.execute(
            "SELECT sink, COUNT(*), COALESCE(SUM(attempts > 0), 0), MIN(created_at) "
            "FROM deliveries WHERE status = 'pending' GROUP BY sink"
        )
    }
    for name in sinks:
        delivered, dead = by_sink.get(name, (0, 0))
        depth, failing, oldest = pending.get(name, (0, 0, None))
        error = conn.execute(
            "SELECT last_error FROM deliveries WHERE status IN ('pending', 'dead') AND sink = ? "
            "AND last_error IS NOT NULL ORDER BY event_sequence DESC LIMIT 1",
            (name,),
        ).fetchone()
        out.sinks[name] = {
            "delivered_last_day": int(delivered),
            "failing": int(failing),
            "dead_last_day": int(dead),
            "outbox_depth": int(depth),
            "oldest_pending": oldest,
            "last_error": error[0] if error else None,
        }
    for kind, name, at, reason in conn.execute("SELECT kind, name, paused_at, reason FROM pauses"):
        out.pauses[(str(kind), str(name))] = {"since": at, "reason": reason}
    out.api = usage_figures(conn, now)
    rows = conn.execute(
        "SELECT sequence, id, type, source, subject, time, body FROM events "
        "ORDER BY sequence DESC LIMIT 20"
    ).fetchall()
    out.last_events = [_event(row) for row in rows]
    if "daemon_schedule" in tables:
        for source, mode, start in conn.execute(
            "SELECT source, mode, last_start FROM daemon_schedule"
        ):
            out.schedule[(str(source), str(mode))] = str(start)
    return out


def _events_last_day(
    conn: sqlite3.Connection, hour: str, day: str
) -> dict[str, tuple[int, int, dict[str, int]]]:
    """Per source: events in the last hour, the last day, and per hour (``YYYY-MM-DDTHH``).

    One range read of the ``time`` index, whatever the length of the history.
    """
    out: dict[str, tuple[int, int, dict[str, int]]] = {}
    rows = conn.execute(
        "SELECT source, substr(time, 1, 13), COUNT(*), COALESCE(SUM(time >= ?), 0) "
        "FROM events WHERE time >= ? GROUP BY source, substr(time, 1, 13)",
        (hour, day),
    )
    for source, bucket, count, recent in rows:
        last_hour, last_day, per_hour = out.get(str(source), (0, 0, {}))
        per_hour[str(bucket)] = int(count)
        out[str(source)] = (last_hour + int(recent), last_day + int(count), per_hour)
    return out


def _first_rowid_since(conn: sqlite3.Connection, since: str) -> int:
    """The first ``deliveries`` row queued at or after ``since``.

    Rows are appended in time order (``created_at`` is the commit time), so a binary
    search over the rowid finds the window in a few index reads; the 24-hour figures
    then read only that window instead of the whole retained history.
    """
    low, high = conn.execute("SELECT MIN(rowid), MAX(rowid) FROM deliveries").fetchone()
    if low is None:
        return 0
    high += 1
    while low < high:
        mid = (low + high) // 2
        row = conn.execute(
            "SELECT created_at FROM deliveries WHERE rowid >= ? ORDER BY rowid LIMIT 1", (mid,)
        ).fetchone()
        if row is None or str(row[0]) >= since:
            high = mid
        else:
            low = mid + 1
    return int(low)


def _source(conn: sqlite3.Connection, name: str) -> dict[str, Any]:
    (records,) = conn.execute("SELECT COUNT(*) FROM snapshots WHERE source = ?", (name,)).fetchone()
    cur = conn.execute(
        "SELECT * FROM polls WHERE source = ? ORDER BY started_at DESC, rowid DESC LIMIT 1",
        (name,),
    )
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    last = dict(zip(names, row, strict=True)) if row else None
    failed = conn.execute(
        "SELECT finished_at, error FROM polls WHERE source = ? AND outcome = 'failed' "
        "ORDER BY started_at DESC, rowid DESC LIMIT 1",
        (name,),
    ).fetchone()
    state = conn.execute(
        "SELECT watermark, held_at, held_count, held_total FROM source_state WHERE source = ?",
        (name,),
    ).fetchone()
    held = None
    if state and state[1]:
        held = {"since": state[1], "deletes": state[2], "of": state[3]}
    return {
        "records": int(records),
        "last_poll": last,
        "last_error": {
            "at": failed[0],
            "error": failed[1],
            "gainsight_code": gainsight_code(failed[1]),
        }
        if failed
        else None,
        "watermark": state[0] if state else None,
        "held_delete": held,
    }


def _event(row: tuple[Any, ...]) -> dict[str, Any]:
    sequence, ident, type_, source, subject, time, body = row
    try:
        data = json.loads(body).get("data") or {}
    except (ValueError, AttributeError):
        data = {}
    raw = data.get("changes")
    changes: dict[str, Any] = raw if isinstance(raw, dict) else {}
    record = data.get("after") or data.get("before") or {}
    label = record.get("Name") if isinstance(record, dict) else None
    return {
        "sequence": int(sequence),
        "id": ident,
        "type": type_,
        "source": source,
        "key": subject,
        "name": label if isinstance(label, str) else None,
        "time": time,
        "change": data.get("change"),
        "changes": {
            str(f): {"old": v.get("old"), "new": v.get("new")}
            for f, v in list(changes.items())[:8]
            if isinstance(v, dict)
        },
    }
