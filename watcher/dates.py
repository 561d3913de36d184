"""Date normalization (pure): every date Gainsight sends becomes ISO-8601 UTC.

Gainsight returns DATE/DATETIME values as epoch milliseconds (Company/MDA doc
samples) or ISO strings with or without milliseconds, ``Z`` or an offset, or a
bare date (CTA ``DueDate``). One canonical form makes them comparable:
``YYYY-MM-DDTHH:MM:SS.fffZ`` (a bare date is midnight UTC).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?)?$"
)
# Epoch milliseconds between 2000-01-01 and 2100-01-01.
_EPOCH_MS_MIN = 946_684_800_000
_EPOCH_MS_MAX = 4_102_444_800_000
_DATE_NAME = re.compile(r"(date|time|_on$|On$|At$|_at$)", re.IGNORECASE)
_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@lru_cache(maxsize=64)
def format_utc(value: datetime) -> str:
    """Canonical text of an aware datetime: ``2026-11-23T16:00:00.123Z`` (a naive one
    is taken as UTC).

    Cached: a page's commit formats the same instant for each of its events and
    deliveries. Equal aware instants give equal text whatever their zone, and a naive
    datetime never equals an aware one, so the cache cannot mix them up."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime | None:
    """Parse the ISO forms Gainsight uses; ``None`` when ``text`` is not one."""
    m = _ISO.match(text.strip())
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        value = datetime(
            int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0), micro
        )
    except ValueError:
        return None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        value = value - sign * offset
    return value.replace(tzinfo=UTC)


def from_epoch_ms(ms: int | float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def to_epoch_ms(value: datetime) -> int:
    return int((value - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


_DATE_FIELD_CACHE: dict[str, bool] = {}


def looks_like_date_field(name: str) -> bool:
    """Field names whose numbers are epoch milliseconds (``RenewalDate``, ``DeletedOn``)."""
    known = _DATE_FIELD_CACHE.get(name)
    if known is None:
        known = bool(_DATE_NAME.search(name.rsplit(".", 1)[-1]))
        if len(_DATE_FIELD_CACHE) < 10_000:  # field names are few; bound it anyway
            _DATE_FIELD_CACHE[name] = known
    return known


def _canonical_shape(text: str) -> bool:
    """Already ``YYYY-MM-DDTHH:MM:SS.fffZ`` (parsing would give the same text back)."""
    return (
        len(text) == 24
        and text[0] in "12"
        and text[10] == "T"
        and text[19] == "."
        and text[23] == "Z"
        and text[4] == text[7] == "-"
        and text[13] == text[16] == ":"
    )


_EPOCH_TEXT: dict[int, str] = {}  # DATE fields repeat the same midnights endlessly
_SECOND_TEXT: dict[int, str] = {}  # DATETIMEs of one sweep cluster in few seconds


def _format_epoch_ms(ms: int) -> str:
    text = _EPOCH_TEXT.get(ms)
    if text is None:
        seconds, millis = divmod(ms, 1000)
        prefix = _SECOND_TEXT.get(seconds)
        if prefix is None:
            t = time.gmtime(seconds)
            prefix = (
                f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
                f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}."
            )
            if len(_SECOND_TEXT) >= 8192:
                _SECOND_TEXT.clear()
            _SECOND_TEXT[seconds] = prefix
        text = f"{prefix}{millis:03d}Z"
        if millis == 0:  # midnights and whole seconds repeat; unique instants do not
            if len(_EPOCH_TEXT) >= 8192:
                _EPOCH_TEXT.clear()
            _EPOCH_TEXT[ms] = text
    return text


def number_to_date(value: Any) -> Any:
    """A plausible epoch-ms instant (2000-2100) as canonical text, else ``value`` unchanged.

    For fields known to be dates whatever their name (the modified field, a source's
    ``date_fields``); :func:`normalize_date` asks the field name first.
    """
    if type(value) is int:
        return _format_epoch_ms(value) if _EPOCH_MS_MIN <= value <= _EPOCH_MS_MAX else value
    if type(value) is float and _EPOCH_MS_MIN <= value <= _EPOCH_MS_MAX:
        return format_utc(from_epoch_ms(value))
    return value


def normalize_date(value: Any, field: str = "") -> Any:
    """Return the canonical ISO text for a date value, else ``value`` unchanged.

    Strings in any accepted ISO form are always converted; numbers only when the
    field name says it is a date and the number is a plausible epoch-ms instant.
    """
    if isinstance(value, str):
        # Fast exits (a sweep normalizes millions of values): text that cannot match
        # the ISO pattern, and text already in canonical form, come back unchanged.
        first = value[:1]
        if not first.isdigit():
            if not first.isspace():
                return value
        elif len(value) < 10 or value[4] != "-" or _canonical_shape(value):
            return value
        parsed = parse_iso(value)
        return format_utc(parsed) if parsed is not None else value
    if type(value) is int and field and looks_like_date_field(field):
        return _format_epoch_ms(value) if _EPOCH_MS_MIN <= value <= _EPOCH_MS_MAX else value
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and field
        and looks_like_date_field(field)
        and _EPOCH_MS_MIN <= value <= _EPOCH_MS_MAX
    ):
        return format_utc(from_epoch_ms(value))
    return value


def parse_when(text: str, now: datetime) -> datetime:
    """Parse a CLI time: ISO (``2026-11-23``, ``2026-11-23T16:00Z``) or relative (``2h``)."""
    from watcher.durations import parse_duration

    parsed = parse_iso(text)
    if parsed is not None:
        return parsed
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        raise ValueError(
            f"time {text!r} is not understood; use ISO-8601 ('2026-11-23T16:00Z') "
            "or a duration back from now ('2h', '3d')"
        ) from None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """An HTTP ``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date.

    ``None`` when absent or not one of those forms (negative, ``inf``, ``nan``, a date
    without a zone); a date in the past is ``0.0``.
    """
    text = (value or "").strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())
