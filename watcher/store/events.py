"""Table ``events``: the append-only log of CloudEvents, each with its ``sequence``.

Events are inserted by :meth:`watcher.store.Store.commit` (with their deliveries, in
one transaction); every read of the table is here, for the CLI, replay, the feed and
the dispatcher.
"""

# ruff: noqa: S608  # SQL text only interpolates "?" placeholders
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from watcher.core.events import CloudEvent, order_key, with_sequence
from watcher.store.db import translate_errors
from watcher.store.deliveries import DeliveryRow, Route, delivery_rows, insert_deliveries


def event_text(event: Mapping[str, Any]) -> str:
    """The CloudEvent as stored and delivered: compact UTF-8 JSON, escapes only where
    needed, one line.

    Written by orjson (a fifth of the stdlib's time, and a tenth fewer bytes without
    the spaces). What orjson refuses (an integer beyond 64 bits, a lone surrogate) is
    written by the stdlib, a lone surrogate as a \\u escape. Never a ``NaN`` or
    ``Infinity`` token, which strict receivers reject: orjson writes ``null`` (records
    never carry one: see :mod:`watcher.core.normalize`), the stdlib raises
    ``ValueError``.
    """
    try:
        return _orjson_dumps(event).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        pass
    text = _encode(event)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep it as a \\u escape
        text = _encode_ascii(event)
    return text


# Built once: json.dumps with arguments builds an encoder per call.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_encode_ascii = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
_orjson_dumps = orjson.dumps


@dataclass(frozen=True)
class StoredEvent:
    sequence: int
    id: str
    type: str
    source: str
    subject: str
    time: str
    poll_id: str | None
    body: str

    def cloudevent(self) -> CloudEvent:
        value: CloudEvent = json.loads(self.body)
        return value


def insert_events(
    conn: sqlite3.Connection,
    source: str,
    events: Sequence[CloudEvent],
    *,
    routes: Sequence[Sequence[Route]],
    poll_id: str | None,
    now: datetime,
) -> list[CloudEvent]:
    """Append ``events`` (numbered on) and queue each one's ``routes``, in the caller's
    transaction; return the events as stored (with ``sequence``)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    seq = int(row[0]) if row else 0
    out: list[CloudEvent] = []
    rows: list[tuple[int, str, str, str, str, str, str | None, str]] = []
    queued: list[DeliveryRow] = []
    for n, event in enumerate(events):
        seq += 1
        full = with_sequence(event, seq)
        text = event_text(full)
        rows.append(
            (seq, full["id"], full["type"], source, full["subject"], full["time"], poll_id, text)
        )
        if n < len(routes) and routes[n]:
            queued.extend(
                delivery_rows(
                    event_sequence=seq,
                    event_id=full["id"],
                    order_key=order_key(full, source),
                    routes=routes[n],
                    now=now,
                )
            )
        out.append(full)
    conn.executemany(
        "INSERT INTO events (sequence, id, type, source, subject, time, poll_id, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    if queued:
        insert_deliveries(conn, queued)
    return out


def events_since(
    conn: sqlite3.Connection, since: str, *, limit: int = 100_000
) -> list[tuple[int, str, str]]:
    """(sequence, id, body) of events with ``time`` at or after ``since`` (replay)."""
    with translate_errors("read events"):
        return conn.execute(
            "SELECT sequence, id, body FROM events WHERE time >= ? ORDER BY sequence LIMIT ?",
            [since, limit],
        ).fetchall()


def last_events(conn: sqlite3.Connection, count: int) -> list[tuple[int, str, str]]:
    """(sequence, id, body) of the newest ``count`` events, newest first."""
    with translate_errors("read events"):
        return conn.execute(
            "SELECT sequence, id, body FROM events ORDER BY sequence DESC LIMIT ?", [count]
        ).fetchall()


def bodies(conn: sqlite3.Connection, sequences: Iterable[int]) -> dict[int, str]:
    """Event bodies by sequence (the dispatcher's window)."""
    values = [int(s) for s in sequences]
    marks = ",".join("?" for _ in values)
    with translate_errors("read event bodies"):
        rows = conn.execute(
            f"SELECT sequence, body FROM events WHERE sequence IN ({marks})", values
        ).fetchall()
    return {int(seq): str(body) for seq, body in rows}


class Events:
    """Reads of ``events`` on the store's connection."""

    conn: sqlite3.Connection

    def list_events(
        self,
        *,
        source: str | None = None,
        type: str | None = None,
        since: str | None = None,
        after: int | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[StoredEvent]:
        """Events in sequence order; ``newest`` takes the last ``limit`` instead of the first.

        ``type`` is a full type (``gainsight.company.updated``) or a change
        (``updated``, ``delete_held``) matched against the type's last part.
        """
        where: list[str] = []
        args: list[Any] = []
        if source:
            where.append("source = ?")
            args.append(source)
        if type:
            if "." in type:
                where.append("type = ?")
                args.append(type)
            else:
                where.append("type LIKE ?")
                args.append(f"%.{type}")
        if since:
            where.append("time >= ?")
            args.append(since)
        if after is not None:
            where.append("sequence > ?")
            args.append(after)
        sql = "SELECT sequence, id, type, source, subject, time, poll_id, body FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY sequence DESC" if newest else " ORDER BY sequence"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with translate_errors("read events"):
            rows = self.conn.execute(sql, args).fetchall()
        events = [StoredEvent(*row) for row in rows]
        if newest:
            events.reverse()
        return events

    def get_event(self, ident: str) -> StoredEvent | None:
        """One event by id, or by sequence number when ``ident`` is all digits."""
        sql = "SELECT sequence, id, type, source, subject, time, poll_id, body FROM events WHERE "
        with translate_errors("read event"):
            if ident.isascii() and ident.isdigit():
                row = self.conn.execute(sql + "sequence = ?", (int(ident),)).fetchone()
            else:
                row = self.conn.execute(sql + "id = ?", (ident,)).fetchone()
        return StoredEvent(*row) if row else None
