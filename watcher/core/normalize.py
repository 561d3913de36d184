"""Canonical values (pure): two readings of the same record compare equal.

Gainsight answers the same value in several spellings: ``998765.0`` and
``998765.00000000000`` (JSON parses both to one float), ``22`` and ``22.0``,
epoch milliseconds and ISO-8601 text for one instant, objects whose keys come in
any order. :func:`normalize_record` maps every spelling to one canonical form:

- dates become ``YYYY-MM-DDTHH:MM:SS.fffZ`` (:mod:`watcher.dates`): ISO strings
  always, numbers only in date-named fields and when plausible epoch-ms;
- a float with an integral value becomes an ``int`` (``22.0`` -> ``22``), so the
  canonical JSON of equal numbers is equal text;
- nested objects are normalized recursively; lists keep their order;
- poison values are made harmless where data arrives: a number that is not finite
  (``NaN``, ``Infinity``, or ``1e400``, which JSON parses to infinity) becomes
  ``None`` - it has no JSON spelling and never equals itself; a lone UTF-16
  surrogate (``"\\ud800"`` is a legal JSON escape but not Unicode text) becomes
  U+FFFD, in values and in field names; a container nested deeper than
  :data:`MAX_DEPTH` levels is replaced by the text :data:`TOO_DEEP` (a record is
  flat; a value nested 500 deep would otherwise exhaust the stack).

Numbers are dates (epoch milliseconds) in the fields the caller names (``date_fields``,
a source setting) when it names any; otherwise in fields whose names look like dates
(``RenewalDate``, ``DeletedOn``). Text in ISO-8601 form is a date in any field.

This is the one normalization of records: the Gainsight client hands records over as
received, and the poll engine normalizes a record once, when its fingerprint (taken
as received) differs from the stored one (:meth:`watcher.poll.pages.PageWork._compare`).

:func:`fingerprint` (and :func:`page_fingerprints`, a page at a time) hashes a
record as received, a fast path that lets unchanged records skip normalization and
the field-by-field comparison. Normalization is
idempotent: ``normalize_record(normalize_record(r)) == normalize_record(r)``.
"""

from __future__ import annotations

import collections
import itertools
import json
import math
import operator
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from operator import itemgetter
from typing import Any

import orjson
import xxhash

from watcher.dates import looks_like_date_field, normalize_date, number_to_date

Record = dict[str, Any]
DateTest = Callable[[str], bool]

MAX_DEPTH = 32
TOO_DEEP = f"[value nested deeper than {MAX_DEPTH} levels: not kept]"
_MAX_EXACT_INT = 2**53
_DATE_FIELDS: dict[str, bool] = {}
_CANONICAL_LEN = len("2026-11-23T16:00:00.000Z")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Bound once: fingerprint() runs for every record of every sweep.
_orjson_dumps = orjson.dumps
_xxh3 = xxhash.xxh3_64_intdigest
_sub = operator.sub
_repeat = itertools.repeat
_SIGNED = 1 << 63  # XXH3 gives 0 .. 2**64-1; SQLite integers are signed 64-bit
_DICT_ONLY = {dict}


def _is_date_field(field: str) -> bool:
    known = _DATE_FIELDS.get(field)
    if known is None:
        known = looks_like_date_field(field)
        if len(_DATE_FIELDS) < 100_000:  # field names are few; bound it anyway
            _DATE_FIELDS[field] = known
    return known


def date_test(date_fields: Collection[str] = ()) -> DateTest:
    """Whether a field's numbers are dates.

    A source's ``date_fields``, when set, decides: numbers are dates in the listed
    fields and nowhere else (a ``RenewalDate`` holding a plain count stays a number).
    When it is not set, a field whose name looks like a date holds dates.
    """
    if not date_fields:
        return _is_date_field
    return frozenset(date_fields).__contains__


def clean_text(value: str) -> str:
    """``value`` with lone surrogates replaced by U+FFFD (ASCII text is returned at once)."""
    if value.isascii():
        return value
    return _SURROGATE.sub("\ufffd", value)


def has_surrogate(value: str) -> bool:
    """Text that is not valid Unicode (a lone surrogate): SQLite and UTF-8 cannot hold it."""
    return not value.isascii() and _SURROGATE.search(value) is not None


def _string(value: str) -> str:
    # Fast exits: most strings (ids, names, picklist GSIDs) cannot be dates, and
    # dates already in canonical form need no parsing.
    if len(value) < 10 or value[4:5] != "-" or not value[:4].isdigit():
        return value
    if len(value) == _CANONICAL_LEN and value[10] == "T" and value[-1] == "Z":
        return value
    result: str = normalize_date(value)
    return result


def normalize_value(
    value: Any, field: str = "", is_date: DateTest = _is_date_field, depth: int = 0
) -> Any:
    """Canonical form of one value; ``field`` (the key it sits under) decides epoch-ms dates."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return _string(clean_text(value))
    if isinstance(value, int):
        if field and is_date(field):
            return number_to_date(value)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None  # NaN / Infinity: no JSON spelling, and NaN != NaN
        if field and is_date(field):
            value = number_to_date(value)
            if not isinstance(value, float):
                return value
        if value.is_integer() and abs(value) < _MAX_EXACT_INT:
            return int(value)
        return value
    if isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            return TOO_DEEP
        return {
            clean_text(str(k)): normalize_value(v, str(k), is_date, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            return TOO_DEEP
        return [normalize_value(v, field, is_date, depth + 1) for v in value]
    return value


def normalize_record(record: Mapping[str, Any], date_fields: Collection[str] = ()) -> Record:
    """Canonical form of a flat record (keys as Gainsight sent them).

    Copies the record in C and rewrites only the values whose canonical form differs
    (date-like text, non-ASCII text, whole numbers under date names, floats, nested
    values): a sweep normalizes millions of records, most of whose values are
    already canonical. ``date_fields`` names fields whose numbers are epoch-ms dates
    whatever their name.
    """
    is_date = date_test(date_fields)
    if "".join(record).isascii():
        out: Record = dict(record)
    else:  # a field name with a lone surrogate
        out = {clean_text(name): value for name, value in record.items()}
        record = out.copy()
    for name, raw in record.items():
        kind = type(raw)
        if kind is str:
            text = raw if raw.isascii() else clean_text(raw)
            if text[4:5] == "-" and text[:1].isdigit():
                out[name] = _string(text)
            elif text is not raw:
                out[name] = text
        elif kind is int:
            if is_date(name):
                out[name] = number_to_date(raw)
        elif kind is not bool and raw is not None:
            out[name] = normalize_value(raw, name, is_date)
    return out


def normalize_records(
    records: Sequence[Mapping[str, Any]], date_fields: Collection[str] = ()
) -> list[Record]:
    """``[normalize_record(r, date_fields) for r in records]``, column by column.

    A page's records share their fields: each field's values are looked at together
    (their types in one pass, a column of IDs and names found free of dates and
    non-ASCII text in one search), so only the columns that change are rewritten
    value by value (epoch-ms dates, floats). Records that do not share their fields
    are normalized one by one.
    """
    if len(records) < _COLUMNS_MIN or set(map(type, records)) != _DICT_ONLY:
        return [normalize_record(r, date_fields) for r in records]
    fields = list(records[0])
    if set(map(len, records)) != {len(fields)} or not "".join(fields).isascii():
        return [normalize_record(r, date_fields) for r in records]
    try:
        columns = [list(map(itemgetter(name), records)) for name in fields]
    except KeyError:  # same number of fields, not the same fields
        return [normalize_record(r, date_fields) for r in records]
    is_date = date_test(date_fields)
    out = list(map(dict, records))
    for name, column in zip(fields, columns, strict=True):
        values = _normalize_column(name, column, is_date)
        if values is not None:
            _consume(map(operator.setitem, out, _repeat(name), values), maxlen=0)
    return out


def _normalize_column(name: str, column: list[Any], is_date: DateTest) -> list[Any] | None:
    """The canonical values of one field's column; ``None`` when all are already."""
    kinds = set(map(type, column))
    alone = len(kinds) == 1  # no nulls or booleans among them
    if kinds == _STR_ONLY:
        # Canonical already unless some text is not ASCII or may be a date (a "-" at
        # index 4): both are found in C, the second only when the column has a "-".
        joined = "".join(column)
        if joined.isascii() and ("-" not in joined or "-" not in map(_FIFTH, column)):
            return None
        return list(map(_string, map(clean_text, column)))
    kinds -= _PLAIN
    if not kinds:
        return None
    if kinds == _INT_ONLY:  # with nulls and booleans, which stay as they are
        if not is_date(name):
            return None
        distinct = set(column)  # (True and 1 are one key: booleans go the long way)
        if len(distinct) * 2 > len(column) or (not alone and bool in set(map(type, column))):
            return list(map(number_to_date, column))
        # Dates repeat (renewal dates, a sweep's modified dates): each one turned once.
        return list(map({v: number_to_date(v) for v in distinct}.__getitem__, column))
    if kinds == _FLOAT_ONLY and alone and not is_date(name) and all(map(math.isfinite, column)):
        return [
            int(v) if v.is_integer() and -_MAX_EXACT_INT < v < _MAX_EXACT_INT else v for v in column
        ]
    return [normalize_value(v, name, is_date) for v in column]


_COLUMNS_MIN = 8
_consume = collections.deque
_STR_ONLY, _INT_ONLY, _FLOAT_ONLY = {str}, {int}, {float}
_PLAIN = {type(None), bool}
_FIFTH = itemgetter(slice(4, 5))  # the character at index 4 of a text, or ""


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal canonical values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(record: Mapping[str, Any]) -> int:
    """A signed 64-bit hash of a record as it is (fits an SQLite INTEGER).

    The bytes hashed are the record's compact JSON, fields in the order they came
    (:func:`page_fingerprints` does a whole page in C and gets the same values).
    Equal records with their fields in the same order have equal fingerprints. It is
    only a fast path: a different fingerprint makes the caller compare the records
    field by field (:func:`watcher.core.diff.compare`), so a different field order,
    or a future change of this function, costs a comparison, never a false change.
    """
    plain = record if type(record) is dict else dict(record)
    try:
        text = _orjson_dumps(plain)
    except (TypeError, ValueError):  # a lone surrogate, an integer beyond 64 bits
        text = _stdlib_text(plain)
    return _xxh3(text) - _SIGNED


def page_fingerprints(records: Sequence[Any], *, mappings: bool = False) -> list[int] | None:
    """:func:`fingerprint` of each of ``records`` (dicts), written and hashed in C
    (a third of the time of a call per record); ``None`` when a record is not a dict
    or holds something orjson cannot write, for the caller to fingerprint record by
    record. ``mappings``: the caller knows every record is a mapping (each gave up
    its key), so the pass that checks their types is skipped (orjson refuses any
    mapping that is not a dict)."""
    if not mappings and set(map(type, records)) - _DICT_ONLY:
        return None
    try:
        return list(map(_sub, map(_xxh3, map(_orjson_dumps, records)), _repeat(_SIGNED)))
    except (TypeError, ValueError):
        return None


def _stdlib_text(record: Record) -> bytes:
    # What orjson refuses, deterministically: the same record gives the same bytes.
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=repr)
    return text.encode("utf-8", "surrogatepass")


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
