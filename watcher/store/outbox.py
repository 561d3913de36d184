"""Outbox queries over the ``deliveries``, ``events`` and ``pauses`` tables.

Rows are inserted by :func:`watcher.store.deliveries.queue_deliveries` (a poll's
commit, in the event's own transaction, and ``watcher replay``); this module reads and updates
them for the dispatcher and the CLI. Every write goes through
:func:`watcher.store.db.transaction`. Times: ``next_attempt_at`` is epoch seconds,
``created_at`` / ``delivered_at`` / ``paused_at`` canonical ISO text.

``explicit = 1`` marks a delivery an operator asked for (``deliveries retry``): the
throttle never suppresses it. ``message_id`` is the id receivers see as
``webhook-id`` when it is not the event id (``watcher replay --new-ids``).
"""

# ruff: noqa: S608  # SQL text only interpolates "?" placeholders and fixed column lists
from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from watcher.dates import format_utc
from watcher.store import events
from watcher.store.db import transaction, translate_errors
from watcher.store.deliveries import queue_deliveries

STATUSES = ("pending", "delivered", "dead", "suppressed")


@dataclass(frozen=True)
class DeliveryRow:
    id: str
    event_sequence: int
    event_id: str
    rule: str
    sink: str
    order_key: str
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: str
    delivered_at: str | None
    explicit: bool = False
    message_id: str | None = None
    #: the event's ``time`` (throttle windows are measured in event time)
    event_time: str = ""

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> DeliveryRow:
        return cls(
            id=row[0],
            event_sequence=int(row[1]),
            event_id=row[2],
            rule=row[3],
            sink=row[4],
            order_key=row[5],
            status=row[6],
            attempts=int(row[7] or 0),
            next_attempt_at=float(row[8] or 0.0),
            last_error=row[9],
            created_at=row[10],
            delivered_at=row[11],
            explicit=bool(row[12]),
            message_id=row[13],
            event_time=row[14] or row[10],
        )


_COLUMNS = (
    "d.id, d.event_sequence, d.event_id, d.rule, d.sink, d.order_key, d.status, d.attempts, "
    "d.next_attempt_at, d.last_error, d.created_at, d.delivered_at, d.explicit, d.message_id, "
    "e.time"
)
_FROM = "FROM deliveries d LEFT JOIN events e ON e.sequence = d.event_sequence"


@dataclass(frozen=True)
class Pauses:
    rules: frozenset[str]
    sinks: frozenset[str]


def _marks(names: Iterable[str]) -> tuple[str, list[str]]:
    values = list(names)
    return ",".join("?" for _ in values), values


class Outbox:
    """Delivery bookkeeping on one :class:`~sqlite_utils.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.conn = db.conn

    # -- reading -------------------------------------------------------------------

    def pending_window(
        self, sink: str, *, exclude_rules: Iterable[str] = (), limit: int = 500
    ) -> list[DeliveryRow]:
        """The oldest ``limit`` pending rows of ``sink`` (without bodies), in event order."""
        marks, names = _marks(exclude_rules)
        skip = f"AND d.rule NOT IN ({marks})" if names else ""
        sql = (
            f"SELECT {_COLUMNS} {_FROM} "
            f"WHERE d.status = 'pending' AND d.sink = ? {skip} "
            "ORDER BY d.event_sequence, d.id LIMIT ?"
        )
        with translate_errors("read pending deliveries"):
            rows = self.conn.execute(sql, [sink, *names, limit]).fetchall()
        return [DeliveryRow.from_row(r) for r in rows]

    def bodies(self, sequences: Iterable[int]) -> dict[int, str]:
        """Event bodies by sequence."""
        return events.bodies(self.conn, sequences)

    def pending_sinks(self) -> list[str]:
        with translate_errors("read pending sinks"):
            rows = self.conn.execute(
                "SELECT DISTINCT sink FROM deliveries WHERE status = 'pending'"
            ).fetchall()
        return sorted(r[0] for r in rows)

    def throttle_usage(
        self,
        *,
        rule: str,
        sink: str,
        after: str,
        until: str,
        exclude_event: str,
        order_key: str | None = None,
        limit: int,
    ) -> tuple[set[str], dict[str, float]]:
        """Other events whose ``time`` is in ``(after, until]`` that ``rule`` sent to
        ``sink`` (one key if given): the ids of delivered ones (at most ``limit``), and
        of ones still pending after an attempt (sent, not yet confirmed) with their
        next attempt (epoch s)."""
        key = "AND d.order_key = ?" if order_key is not None else ""
        sql = (
            "SELECT d.event_id, MIN(d.next_attempt_at) FROM deliveries d JOIN events e "
            "ON e.sequence = d.event_sequence WHERE d.sink = ? AND d.rule = ? "
            f"AND {{status}} AND e.time > ? AND e.time <= ? AND d.event_id != ? {key} "
            # a bound any event of the window satisfies, so only its rows are scanned
            "AND d.event_sequence >= (SELECT MIN(sequence) FROM events INDEXED BY events_time "
            "WHERE time > ?) "
            "GROUP BY d.event_id LIMIT ?"
        )
        params: list[Any] = [sink, rule]
        tail: list[Any] = [after, until, exclude_event]
        if order_key is not None:
            tail.append(order_key)
        tail.append(after)
        with translate_errors("count throttled deliveries"):
            done = self.conn.execute(
                sql.format(status="d.status = 'delivered'"), [*params, *tail, limit]
            ).fetchall()
            sent = self.conn.execute(
                sql.format(status="d.status = 'pending' AND d.attempts > 0"),
                [*params, *tail, -1],
            ).fetchall()
        return {r[0] for r in done}, {r[0]: float(r[1] or 0.0) for r in sent}

    def get(self, delivery_id: str) -> DeliveryRow | None:
        with translate_errors("read delivery"):
            row = self.conn.execute(
                f"SELECT {_COLUMNS} {_FROM} WHERE d.id = ?", [delivery_id]
            ).fetchone()
        return None if row is None else DeliveryRow.from_row(row)

    def list_deliveries(
        self, *, status: str | None = None, sink: str | None = None, limit: int = 100
    ) -> list[DeliveryRow]:
        """Newest first."""
        where, params = [], []
        if status:
            where.append("d.status = ?")
            params.append(status)
        if sink:
            where.append("d.sink = ?")
            params.append(sink)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        sql = (
            f"SELECT {_COLUMNS} {_FROM} {clause} ORDER BY d.event_sequence DESC, d.id DESC LIMIT ?"
        )
        with translate_errors("list deliveries"):
            rows = self.conn.execute(sql, [*params, limit]).fetchall()
        return [DeliveryRow.from_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with translate_errors("count deliveries"):
            rows = self.conn.execute(
                "SELECT status, COUNT(*) FROM deliveries GROUP BY status"
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    # -- dispatcher updates ----------------------------------------------------------

    def mark_delivered(self, ids: Sequence[str], now: datetime) -> None:
        marks, values = _marks(ids)
        with transaction(self.conn, "record delivery"):
            self.conn.execute(
                "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, "
                f"delivered_at = ?, last_error = NULL WHERE id IN ({marks})",
                [format_utc(now), *values],
            )

    def mark_retry(self, delivery_id: str, *, next_attempt_at: float, error: str) -> None:
        with transaction(self.conn, "record failed attempt"):
            self.conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?, "
                "last_error = ? WHERE id = ?",
                [next_attempt_at, error, delivery_id],
            )

    def mark_dead(self, delivery_id: str, *, error: str, count_attempt: bool = True) -> None:
        inc = "attempts + 1" if count_attempt else "attempts"
        with transaction(self.conn, "record dead delivery"):
            self.conn.execute(
                f"UPDATE deliveries SET status = 'dead', attempts = {inc}, last_error = ? "
                "WHERE id = ?",
                [error, delivery_id],
            )

    def mark_suppressed(self, delivery_id: str, *, reason: str) -> None:
        with transaction(self.conn, "record suppressed delivery"):
            self.conn.execute(
                "UPDATE deliveries SET status = 'suppressed', last_error = ? WHERE id = ?",
                [reason, delivery_id],
            )

    def defer(self, ids: Sequence[str], until: float) -> None:
        """Move pending rows' next attempt to ``until`` without counting an attempt."""
        marks, values = _marks(ids)
        with transaction(self.conn, "defer deliveries"):
            self.conn.execute(
                f"UPDATE deliveries SET next_attempt_at = ? WHERE id IN ({marks}) "
                "AND status = 'pending'",
                [until, *values],
            )

    # -- operator actions ------------------------------------------------------------

    def retry(self, delivery_id: str, now: datetime) -> bool:
        """Queue a dead/suppressed/delivered delivery again (fresh attempts). An operator
        asked for it: it is sent whatever the rule's throttle says."""
        with transaction(self.conn, "retry delivery"):
            cur = self.conn.execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                "delivered_at = NULL, explicit = 1 WHERE id = ?",
                [now.timestamp(), delivery_id],
            )
        return cur.rowcount > 0

    def retry_dead(self, now: datetime, *, sink: str | None = None) -> int:
        sql = (
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
            "explicit = 1 WHERE status = 'dead'"
        )
        params: list[Any] = [now.timestamp()]
        if sink:
            sql += " AND sink = ?"
            params.append(sink)
        with transaction(self.conn, "retry dead deliveries"):
            cur = self.conn.execute(sql, params)
        return int(cur.rowcount)

    def queue(
        self,
        *,
        event_sequence: int,
        event_id: str,
        order_key: str,
        routes: Iterable[tuple[str, str]],
        now: datetime,
        tag: str = "",
        message_id: str | None = None,
    ) -> list[str]:
        """Queue ``routes`` of a stored event again (``watcher replay``); return the ids.

        Each call gets fresh delivery ids (:func:`~watcher.store.deliveries.delivery_id`
        with a new replay tag), so a replay queues even an event delivered before.
        ``message_id``: the id receivers see instead of the event id (``--new-ids``)."""
        replay = f"{tag or 'replay'}-{uuid.uuid4().hex}"
        with transaction(self.conn, "queue deliveries"):
            return queue_deliveries(
                self.conn,
                event_sequence=event_sequence,
                event_id=event_id,
                order_key=order_key,
                routes=routes,
                now=now,
                replay=replay,
                message_id=message_id,
            )

    # -- pauses ----------------------------------------------------------------------

    def pauses(self) -> Pauses:
        with translate_errors("read pauses"):
            rows = self.conn.execute("SELECT kind, name FROM pauses").fetchall()
        return Pauses(
            rules=frozenset(r[1] for r in rows if r[0] == "rule"),
            sinks=frozenset(r[1] for r in rows if r[0] == "sink"),
        )

    def list_pauses(self) -> list[tuple[str, str, str, str | None]]:
        with translate_errors("read pauses"):
            rows = self.conn.execute(
                "SELECT kind, name, paused_at, reason FROM pauses ORDER BY kind, name"
            ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def pause(self, kind: str, name: str, *, reason: str, now: datetime) -> bool:
        """Pause a rule or sink; False when it was already paused."""
        if kind not in ("rule", "sink"):
            raise ValueError(f"pause: kind {kind!r} is neither 'rule' nor 'sink'")
        with transaction(self.conn, "pause"):
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO pauses (kind, name, paused_at, reason) VALUES (?, ?, ?, ?)",
                [kind, name, format_utc(now), reason],
            )
        return cur.rowcount > 0

    def resume(self, kind: str, name: str) -> bool:
        """Resume; False when it was not paused."""
        with transaction(self.conn, "resume"):
            cur = self.conn.execute("DELETE FROM pauses WHERE kind = ? AND name = ?", [kind, name])
        return cur.rowcount > 0

    # -- events ----------------------------------------------------------------------
