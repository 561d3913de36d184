"""Canonical values (pure): two readings of the same record compare equal.

Gainsight answers the same value in several spellings: ``998765.0`` and
``998765.00000000000`` (JSON parses both to one float), ``22`` and ``22.0``,
epoch milliseconds and ISO-8601 text for one instant, objects whose keys come in
any order. :func:`normalize_record` maps every spelling to one canonical form:

- dates become ``YYYY-MM-DDTHH:MM:SS.fffZ`` (:mod:`watcher.dates`): ISO strings
  always, numbers only in date-named fields and when plausible epoch-ms;
- a float with an integral value becomes an ``int`` (``22.0`` -> ``22``), so the
  canonical JSON of equal numbers is equal text;
- nested objects are normalized recursively; lists keep their order.

:func:`fingerprint` hashes a normalized record, a fast path that lets unchanged
records skip the field-by-field comparison. Normalization is
idempotent: ``normalize_record(normalize_record(r)) == normalize_record(r)``.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import math
from collections.abc import Mapping
from typing import Any

from watcher.dates import looks_like_date_field, normalize_date

Record = dict[str, Any]

_MAX_EXACT_INT = 2**53
_DATE_FIELDS: dict[str, bool] = {}
_CANONICAL_LEN = len("2026-11-23T16:00:00.000Z")


def _is_date_field(field: str) -> bool:
    known = _DATE_FIELDS.get(field)
    if known is None:
        known = looks_like_date_field(field)
        if len(_DATE_FIELDS) < 100_000:  # field names are few; bound it anyway
            _DATE_FIELDS[field] = known
    return known


def _string(value: str) -> str:
    # Fast exits: most strings (ids, names, picklist GSIDs) cannot be dates, and
    # dates already in canonical form need no parsing.
    if len(value) < 10 or value[4:5] != "-" or not value[:4].isdigit():
        return value
    if len(value) == _CANONICAL_LEN and value[10] == "T" and value[-1] == "Z":
        return value
    result: str = normalize_date(value)
    return result


def normalize_value(value: Any, field: str = "") -> Any:
    """Canonical form of one value; ``field`` (the key it sits under) decides epoch-ms dates."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        if field and _is_date_field(field):
            return normalize_date(value, field)
        return value
    if isinstance(value, float):
        if field and _is_date_field(field):
            value = normalize_date(value, field)
            if not isinstance(value, float):
                return value
        if math.isfinite(value) and value.is_integer() and abs(value) < _MAX_EXACT_INT:
            return int(value)
        return value
    if isinstance(value, Mapping):
        return {str(k): normalize_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize_value(v, field) for v in value]
    return value


def normalize_record(record: Mapping[str, Any]) -> Record:
    """Canonical form of a flat record (keys as Gainsight sent them).

    Copies the record in C and rewrites only the values whose canonical form differs
    (date-like text, whole numbers under date names, floats, nested values): a sweep
    normalizes millions of records, most of whose values are already canonical.
    """
    out: Record = dict(record)
    for name, raw in record.items():
        kind = type(raw)
        if kind is str:
            if raw[4:5] == "-" and raw[:1].isdigit():
                out[name] = _string(raw)
        elif kind is int:
            if _is_date_field(name):
                out[name] = normalize_value(raw, name)
        elif kind is not bool and raw is not None:
            out[name] = normalize_value(raw, name)
    return out


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal canonical values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(record: Mapping[str, Any]) -> int:
    """A signed 64-bit hash of an already normalized record (fits an SQLite INTEGER).

    Equal records with their fields in the same order have equal fingerprints. It is
    only a fast path: a different fingerprint makes the caller compare the records
    field by field (:func:`watcher.core.diff.compare`), so a different field order,
    or a future change of this function, costs a comparison, never a false change.
    """
    # marshal version 2 writes no back-references, so equal records give equal bytes
    # whatever objects they share; it is C-fast (bench/sweep.py: 1.9 vs 2.9 us a record
    # for repr). Its format may change with Python: that costs one compare, as above.
    plain = record if isinstance(record, dict) else dict(record)
    digest = hashlib.blake2b(marshal.dumps(plain, 2), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def same_value(a: Any, b: Any) -> bool:
    """Equality of canonical values that never confuses ``True`` with ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return bool(a == b) and (a is None) == (b is None)
