"""A page's records as received: each record's bytes, parsed only when asked (pure).

A sweep page of 5000 records where 50 changed needs every record's key, modified
date and fingerprint, and the parsed record of only those 50. :func:`read_page`
reads the usual reply envelope twice in C with msgspec: once into each record's
bytes (``msgspec.Raw``, views of the reply, nothing copied), once typed, keeping
only each record's key and modified date. :class:`RawRows` then fingerprints each
record's bytes (XXH3) and parses a record (:func:`~watcher.gainsight.envelope.parse_json`:
msgspec, exact integers; the stdlib where msgspec refuses) only when something asks
for it.

Anything unusual - ``result`` not ``true``, no rows, a row that is not an object,
``NaN``, a lone surrogate escape, bytes that are not UTF-8, nesting too deep - makes
:func:`read_page` answer ``None``: the caller then reads the reply the general way
(:func:`watcher.gainsight.envelope.read_records`), which reports it exactly as before.

The fingerprint of a record read here is the hash of its bytes as the server wrote
them; a record parsed and written back compactly by orjson
(:func:`watcher.core.normalize.fingerprint`) hashes the same bytes when the server
writes compact JSON with orjson's escapes, else differently: fingerprints are a fast
path, and a different one only costs a field-by-field comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import repeat
from operator import attrgetter, sub
from typing import Any, overload

import msgspec
import xxhash

from watcher.gainsight.envelope import parse_json

Record = dict[str, Any]
_SIGNED = 1 << 63


class _Data(msgspec.Struct):
    records: list[msgspec.Raw] | None = None


class _Envelope(msgspec.Struct):
    result: Any = None
    data: _Data | list[msgspec.Raw] | None = None
    requestId: Any = None  # Gainsight's spelling


_RAW = msgspec.json.Decoder(_Envelope)


class RawRows(Sequence[Record]):
    """The records of one reply, in order: ``spans`` (each record's bytes), ``keys``
    and ``stamps`` (each record's key and modified-date values, ``None`` where it has
    none). As a sequence it holds the parsed records, all parsed on first use."""

    __slots__ = ("_one", "_prints", "_rows", "keys", "spans", "stamps")

    def __init__(self, spans: list[msgspec.Raw], keys: list[Any], stamps: list[Any]) -> None:
        self.spans = spans
        self.keys = keys
        self.stamps = stamps
        self._rows: list[Record] | None = None
        self._one: dict[int, Record] = {}
        self._prints: list[int] | None = None

    def __len__(self) -> int:
        return len(self.spans)

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...
    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        return self.rows()[index]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.rows())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RawRows):
            return self.spans == other.spans
        if isinstance(other, list):
            return self.rows() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # a list-like value, unhashable as a list is

    def __repr__(self) -> str:
        return f"RawRows({len(self.spans)} records)"

    def rows(self) -> list[Record]:
        """Every record parsed (once; a record parsed alone before is the same object)."""
        if self._rows is None:
            joined = b"[" + b",".join(self.spans) + b"]"
            rows: list[Record] = parse_json(joined)
            for at, record in self._one.items():
                rows[at] = record
            self._rows, self._one = rows, {}
        return self._rows

    def row(self, at: int) -> Record:
        """The record at ``at``, parsed alone unless all are."""
        if self._rows is not None:
            return self._rows[at]
        record = self._one.get(at)
        if record is None:
            record = self._one[at] = parse_json(bytes(self.spans[at]))
        return record

    def fingerprints(self) -> list[int]:
        """A signed 64-bit XXH3 of each record's bytes, in order (taken once: a page
        with odd rows is read again record by record)."""
        if self._prints is None:
            self._prints = list(map(sub, map(_xxh3, self.spans), repeat(_SIGNED)))
        return self._prints

    def texts(self, at: Iterable[int] | None = None) -> list[str]:
        """The records at ``at`` (default: all) as the JSON text received (their
        stored form)."""
        spans = self.spans if at is None else map(self.spans.__getitem__, at)
        return list(map(bytes.decode, map(bytes, spans)))


_xxh3 = xxhash.xxh3_64_intdigest


def read_page(content: bytes, key_field: str, modified_field: str) -> tuple[RawRows, Any] | None:
    """The rows of a successful reply with at least one row, and its ``requestId`` as
    sent; ``None`` for any other reply (see the module's docstring)."""
    try:
        envelope = _RAW.decode(content)
        data = envelope.data
        spans = data.records if isinstance(data, _Data) else data
        if envelope.result is not True or not spans:
            return None
        if not content.isascii():  # msgspec does not look inside the bytes it skips
            content.decode("utf-8")
        columns = _columns(key_field, modified_field).decode(content)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None  # (ValidationError is a DecodeError; nesting too deep is RecursionError)
    data = columns.data
    rows = data.records if not isinstance(data, list) else data
    if rows is None or len(rows) != len(spans):
        return None
    keys = list(map(_key, rows))
    stamps = keys if modified_field == key_field else list(map(_stamp, rows))
    return RawRows(spans, keys, stamps), envelope.requestId


_key, _stamp = attrgetter("key"), attrgetter("stamp")


@lru_cache(maxsize=64)
def _columns(key_field: str, modified_field: str) -> msgspec.json.Decoder[Any]:
    """A decoder of the envelope that keeps only each row's key and modified date (and
    fails on a row that is not an object)."""
    fields: list[tuple[str, Any, Any]] = [("key", Any, None)]
    names = {"key": key_field}
    if modified_field != key_field:
        fields.append(("stamp", Any, None))
        names["stamp"] = modified_field
    row = msgspec.defstruct("Row", fields, rename=names)
    data = msgspec.defstruct("Data", [("records", list[row] | None, None)])  # type: ignore[valid-type]
    envelope = msgspec.defstruct("Columns", [("data", data | list[row] | None, None)])  # type: ignore[valid-type]
    return msgspec.json.Decoder(envelope)


__all__ = ["RawRows", "read_page"]
