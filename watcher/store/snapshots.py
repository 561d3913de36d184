"""Table ``snapshots`` (the last record read per source and key) and ``field_sets`` (the
select each snapshot was read with). Writes of snapshots happen in
:meth:`watcher.store.Store.commit`; what a full sweep saw and missed is
:mod:`watcher.store.sweep_keys`.
"""

# ruff: noqa: S608  # SQL text only interpolates "?" placeholders and fixed table names
from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence

import orjson

from watcher.clock import Clock
from watcher.core.normalize import Record, normalize_record
from watcher.dates import format_utc
from watcher.store.db import transaction, translate_errors

# A page of at least this many keys reads its stored fingerprints by key range first.
RANGE_SCAN_MIN = 64
# SQLite's default limit on bound parameters is 32766 (3.32+); stay far below.
CHUNK = 900

# The fallback for what orjson refuses (an integer beyond 64 bits, a lone surrogate).
# ASCII-only: a lone surrogate ("\\ud800" is a legal JSON escape) stays an escape, and
# SQLite, which stores UTF-8, never sees text it cannot encode. A NaN or Infinity in
# the same record is written as Python's json writes it (orjson writes null); it
# reads back as such and is normalized to null before any comparison or event.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def key_array(keys: Sequence[str]) -> str:
    """``keys`` as one JSON array, for ``json_each`` (text: SQLite 3.45+ reads a blob
    as its binary JSONB)."""
    try:
        return orjson.dumps(list(keys)).decode()
    except TypeError:  # text orjson refuses (a lone surrogate): the stdlib escapes it
        return json.dumps(list(keys))


def fingerprints_by_key(
    conn: sqlite3.Connection, source: str, keys: Sequence[str]
) -> dict[str, int]:
    """Stored fingerprint of each of ``keys`` that has a snapshot, each looked up in the
    primary key (the keys as one JSON array through ``json_each``)."""
    return dict(
        conn.execute(
            "SELECT key, fp FROM snapshots WHERE source = ? "
            "AND key IN (SELECT value FROM json_each(?))",
            (source, key_array(keys)),
        )
    )


def snapshot_text(record: Record) -> str:
    """Snapshot text: compact JSON, fields in the order Gainsight sent them.

    Written by orjson (a seventh of the stdlib's time: a baseline writes every record);
    what it refuses (an integer beyond 64 bits, a lone surrogate) by the stdlib, which
    escapes it."""
    try:
        return _orjson_dumps(record).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return _ENCODER.encode(record)


def snapshot_texts(records: Sequence[Record | str]) -> list[str]:
    """:func:`snapshot_text` of each record, a page's worth written in C; a text is a
    record's JSON as received (:class:`~watcher.gainsight.rows.RawRows`), kept as it is."""
    kinds = set(map(type, records))
    if str in kinds:
        if kinds == _STR_ONLY:
            return list(records)  # type: ignore[arg-type]  # all text
        return [r if type(r) is str else snapshot_text(r) for r in records]  # type: ignore[arg-type]
    try:
        return list(map(bytes.decode, map(_orjson_dumps, records)))
    except TypeError:
        return [snapshot_text(r) for r in records]  # type: ignore[arg-type]  # dicts only


_STR_ONLY = {str}


_orjson_dumps = orjson.dumps
_repeat = itertools.repeat


def write_snapshots(
    conn: sqlite3.Connection,
    source: str,
    writes: Sequence[tuple[str, int, Record | str]],
    deletes: Sequence[str],
    *,
    field_set: int | None,
    now: str,
) -> None:
    """Upsert and delete snapshots (in the caller's transaction)."""
    if writes:
        keys, prints, records = zip(*writes, strict=True)
        conn.executemany(
            "INSERT INTO snapshots (source, key, fp, body, updated_at, fields) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, key) DO UPDATE SET "
            "fp = excluded.fp, body = excluded.body, updated_at = excluded.updated_at, "
            "fields = COALESCE(excluded.fields, fields)",
            zip(
                _repeat(source, len(keys)),
                keys,
                prints,
                snapshot_texts(records),
                _repeat(now, len(keys)),
                _repeat(field_set, len(keys)),
                strict=True,
            ),
        )
    if deletes:
        conn.executemany(
            "DELETE FROM snapshots WHERE source = ? AND key = ?",
            ((source, key) for key in deletes),
        )


class Snapshots:
    """Reads of ``snapshots`` and ``field_sets``."""

    conn: sqlite3.Connection
    clock: Clock

    def has_snapshots(self, source: str) -> bool:
        with translate_errors("count snapshots"):
            row = self.conn.execute(
                "SELECT 1 FROM snapshots WHERE source = ? LIMIT 1", (source,)
            ).fetchone()
        return row is not None

    def count_snapshots(self, source: str) -> int:
        with translate_errors("count snapshots"):
            row = self.conn.execute(
                "SELECT COUNT(*) FROM snapshots WHERE source = ?", (source,)
            ).fetchone()
        return int(row[0])

    def fingerprints(self, source: str, keys: Sequence[str]) -> dict[str, int]:
        """Stored fingerprint of each of ``keys`` that has a snapshot.

        One query for a whole page, whatever its size. A page of a sweep in key order
        holds a window of the keys: its stored fingerprints are one range scan of the
        primary key (a third of the time of looking each key up). When the range holds
        far more snapshots than the page has keys (a page in another order), the keys
        go in as one JSON array (``json_each``), each looked up in the primary key.
        """
        if not keys:
            return {}
        with translate_errors("read snapshots"):
            if len(keys) >= RANGE_SCAN_MIN:
                limit = 2 * len(keys) + RANGE_SCAN_MIN
                rows = self.conn.execute(
                    "SELECT key, fp FROM snapshots WHERE source = ? AND key BETWEEN ? AND ? "
                    "LIMIT ?",
                    (source, min(keys), max(keys), limit),
                ).fetchall()
                if len(rows) < limit:
                    found = dict(rows)
                    return {k: found[k] for k in keys if k in found}
            return fingerprints_by_key(self.conn, source, keys)

    def records(self, source: str, keys: Sequence[str]) -> dict[str, Record]:
        """Stored record of each of ``keys`` that has a snapshot, as stored (see
        :func:`snapshot_text`: normalize it before showing or comparing it)."""
        out: dict[str, Record] = {}
        with translate_errors("read snapshots"):
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, body in self.conn.execute(
                    f"SELECT key, body FROM snapshots WHERE source = ? AND key IN ({marks})",
                    (source, *chunk),
                ):
                    out[key] = json.loads(body)
        return out

    def snapshot_rows(self, source: str, keys: Sequence[str]) -> dict[str, tuple[Record, int]]:
        """Stored record and field-set id (:meth:`field_sets`) of each of ``keys``."""
        out: dict[str, tuple[Record, int]] = {}
        with translate_errors("read snapshots"):
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, body, fields in self.conn.execute(
                    f"SELECT key, body, COALESCE(fields, 0) FROM snapshots "
                    f"WHERE source = ? AND key IN ({marks})",
                    (source, *chunk),
                ):
                    out[key] = (json.loads(body), fields)
        return out

    # -- the field sets snapshots were taken with ----------------------------------
    # A field set is a source's effective select, sorted. Snapshots written before
    # field sets were recorded carry none (id 0): they count as taken with the
    # source's first recorded field set - the select in force when this version
    # first polled it.

    def field_set(self, source: str, fields: Iterable[str], *, create: bool = True) -> int | None:
        """The id of ``fields`` for ``source`` (created unless ``create`` is false)."""
        text = json.dumps(sorted(set(fields)), separators=(",", ":"))
        with translate_errors("read field sets"):
            row = self.conn.execute(
                "SELECT id FROM field_sets WHERE source = ? AND fields = ?", (source, text)
            ).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            return None
        with transaction(self.conn, "record a field set"):
            cur = self.conn.execute(
                "INSERT INTO field_sets (source, fields, created_at) VALUES (?, ?, ?)",
                (source, text, format_utc(self.clock.now())),
            )
        return int(cur.lastrowid or 0)

    def field_sets(self, source: str) -> dict[int, frozenset[str]]:
        """Every recorded field set of ``source`` by id; id 0 is the first one recorded."""
        with translate_errors("read field sets"):
            rows = self.conn.execute(
                "SELECT id, fields FROM field_sets WHERE source = ? ORDER BY id", (source,)
            ).fetchall()
        out = {int(ident): frozenset(json.loads(text)) for ident, text in rows}
        if rows:
            out[0] = out[int(rows[0][0])]
        return out

    def iter_snapshots(
        self, source: str, date_fields: Collection[str] = ()
    ) -> Iterator[tuple[str, Record]]:
        """Every stored (key, record) of ``source`` in key order, normalized as a poll
        compares it (``date_fields``: the source's; tests, small sources)."""
        with translate_errors("read snapshots"):
            rows = self.conn.execute(
                "SELECT key, body FROM snapshots WHERE source = ? ORDER BY key", (source,)
            ).fetchall()
        for key, body in rows:
            yield key, normalize_record(json.loads(body), date_fields)
