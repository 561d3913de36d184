"""The one place pending ``deliveries`` rows are inserted: :func:`queue_deliveries`.

Both a poll's commit (inside the transaction that inserts the event) and ``watcher
replay`` queue through it, with one id scheme (:func:`delivery_id`) and one order key
(:func:`watcher.core.events.order_key`).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from datetime import datetime

from watcher.dates import format_utc

Route = tuple[str, str]  # (rule name, sink name)


def delivery_id(event_id: str, rule: str, sink: str, replay: str = "") -> str:
    """The id of the delivery of one event for one (rule, sink).

    A poll's commit passes no ``replay`` tag: the id is the sha256 of (event, rule,
    sink), exactly as every earlier version computed it. Ids are persisted, and a
    poll killed between its commit and its end is run again (possibly by a newer
    version, with rows of the older one still pending): the same id makes the
    second insert a no-op, so a delivery is neither queued twice nor lost.

    ``watcher replay`` passes a fresh tag per replay: the id must differ from the
    first delivery's (and from every earlier replay's) so that a replay queues the
    event again.
    """
    text = f"{event_id}\x00{rule}\x00{sink}"
    if replay:
        text += f"\x00{replay}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def queue_deliveries(
    conn: sqlite3.Connection,
    *,
    event_sequence: int,
    event_id: str,
    order_key: str,
    routes: Iterable[Route],
    now: datetime,
    replay: str = "",
    message_id: str | None = None,
) -> list[str]:
    """Insert one pending row per distinct route of one event; return the rows' ids.

    Runs in the caller's transaction (a poll's commit inserts the event and its
    deliveries together: at least once). A row whose id exists is left alone.
    ``message_id``: the id receivers see instead of the event id (``--new-ids``).
    """
    rows = delivery_rows(
        event_sequence=event_sequence,
        event_id=event_id,
        order_key=order_key,
        routes=routes,
        now=now,
        replay=replay,
        message_id=message_id,
    )
    insert_deliveries(conn, rows)
    return [row[0] for row in rows]


DeliveryRow = tuple[str, int, str, str, str, str, float, str, str | None]


def delivery_rows(
    *,
    event_sequence: int,
    event_id: str,
    order_key: str,
    routes: Iterable[Route],
    now: datetime,
    replay: str = "",
    message_id: str | None = None,
) -> list[DeliveryRow]:
    """The pending rows of one event, one per distinct route (:func:`insert_deliveries`)."""
    created = format_utc(now)
    epoch = now.timestamp()
    return [
        (
            delivery_id(event_id, rule, sink, replay),
            event_sequence,
            event_id,
            rule,
            sink,
            order_key,
            epoch,
            created,
            message_id,
        )
        for rule, sink in dict.fromkeys(routes)  # one row per route, even if listed twice
    ]


def insert_deliveries(conn: sqlite3.Connection, rows: Iterable[DeliveryRow]) -> None:
    """Insert pending rows (a poll's commit: those of a whole page in one statement)."""
    conn.executemany(
        "INSERT OR IGNORE INTO deliveries (id, event_sequence, event_id, rule, sink, "
        "order_key, status, attempts, next_attempt_at, created_at, message_id) "
        "VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
        rows,
    )
