"""One page of records as received -> the records a poll can compare.

A reply may carry odd rows: a record without a usable key (null, empty, text with
a lone surrogate), a key twice, a modified date in the future. :func:`read_records`
keeps the usable records keyed by key with the fingerprint of each *as received*
(the poll engine's fast path compares it with the stored one), and reports the
rest to :class:`Oddities`, which counts them on the poll's result and logs where
they were (page and row), a bounded number of lines per poll.

The common case costs nothing per record beyond the key lookup, the hash and the
watermark comparison: the test for a repeated or invalid key is one per page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Protocol

from watcher.core.diff import key_of
from watcher.core.normalize import (
    Record,
    clean_text,
    fingerprint,
    has_surrogate,
    page_fingerprints,
)
from watcher.dates import normalize_date, number_to_date
from watcher.gainsight.rows import RawRows
from watcher.logging import get_logger

MAX_WARNINGS = 20  # log lines per poll and kind: a page of 5000 bad rows must not flood
SAMPLE_KEYS = 5
# What a record can raise on its way through the comparison; anything else is a bug.
RECORD_ERRORS = (AttributeError, TypeError, ValueError, RecursionError)

_log = get_logger("watcher.poll")


class Counts(Protocol):
    """Where the counts go (the poll's result)."""

    skipped: int
    duplicates: int
    future: int


@dataclass
class Oddities:
    """Counts and reports the odd records of one poll."""

    counts: Counts
    source: str
    poll_id: str
    key_field: str
    future_keys: list[str] = field(default_factory=list)
    _warned: dict[str, int] = field(default_factory=dict)

    def skip(self, records: Sequence[Any], raw: Any, page: int, reason: str) -> None:
        """A record that cannot be compared: counted and logged; the page goes on."""
        self.counts.skipped += 1
        if not self._may_warn("skip"):
            return
        row = next((i for i, r in enumerate(records) if r is raw), -1)
        key = raw.get(self.key_field) if isinstance(raw, dict) else None
        _log.warning(
            "poll.record_skipped",
            source=self.source,
            poll_id=self.poll_id,
            page=page,  # 0: a read by key
            row=row,  # 0-based position in that page's reply
            key=clean_text(str(key))[:100] if key is not None else None,
            reason=reason,
        )

    def duplicates(self, keys: Sequence[str], page: int) -> None:
        """Extra copies of keys already read in this poll (dropped)."""
        if not keys:
            return
        self.counts.duplicates += len(keys)
        if self._may_warn("duplicate"):
            _log.warning(
                "poll.duplicate_key",
                source=self.source,
                poll_id=self.poll_id,
                page=page,
                copies=len(keys),
                sample_keys=[clean_text(k) for k in list(dict.fromkeys(keys))[:SAMPLE_KEYS]],
                note="the tenant returned a key more than once in one poll; one copy is kept",
            )

    def future(self, key: str) -> None:
        """A record modified later than now: compared, but kept off the watermark."""
        self.counts.future += 1
        if len(self.future_keys) < SAMPLE_KEYS:
            self.future_keys.append(clean_text(key))

    def _may_warn(self, kind: str) -> bool:
        count = self._warned.get(kind, 0)
        self._warned[kind] = count + 1
        return count < MAX_WARNINGS


class Page:
    """The usable records of one page: key -> record as received, key -> its fingerprint.

    ``prints`` holds the page's keys in the order read. ``records`` is built on first
    use from the records in that order (``raw``), if not given: a steady page, whose
    fingerprints all match, never needs it. ``latest`` is the page's own latest
    believable modified date; ``clean``: nothing odd in the page (no record skipped,
    repeated or dated in the future).
    """

    __slots__ = ("_raw", "_records", "clean", "latest", "prints", "repeated", "top")

    def __init__(
        self,
        records: dict[str, Record] | None,
        prints: dict[str, int],
        top: str | None,  # the latest believable modified date seen so far in the poll
        repeated: bool,  # some key came more than once: see keep_one
        *,
        raw: Sequence[Record] = (),
        latest: str | None = None,
        clean: bool = False,
    ) -> None:
        self._records = records
        self._raw = raw
        self.latest = latest
        self.clean = clean
        self.prints = prints
        self.top = top
        self.repeated = repeated

    @property
    def records(self) -> dict[str, Record]:
        if self._records is None:
            self._records = dict(zip(self.prints, self._raw, strict=True))
            self._raw = ()
        return self._records

    def pick(self, keys: Sequence[str]) -> dict[str, Record]:
        """The records of ``keys`` (at least): of a page read as received
        (:class:`~watcher.gainsight.rows.RawRows`), only a few are parsed, each alone."""
        raw = self._raw
        if self._records is None and type(raw) is RawRows and len(keys) * _FEW < len(raw):
            at = self._positions(raw)
            return {key: raw.row(at[key]) for key in keys}
        return self.records

    def stored_forms(self, keys: Sequence[str]) -> Sequence[Record | str]:
        """What to store for ``keys``: the JSON text as received for a page read as
        received (nothing parsed), else the records."""
        raw = self._raw
        if self._records is None and type(raw) is RawRows:
            if len(keys) == len(raw):  # every key, in page order (a baseline's page)
                return raw.texts()
            return raw.texts(map(self._positions(raw).__getitem__, keys))
        return list(map(self.records.__getitem__, keys))

    def _positions(self, raw: RawRows) -> dict[str, int]:
        # (a page read as received and not yet turned into records: one key a record)
        return dict(zip(self.prints, range(len(raw)), strict=True))


def read_records(
    records: Sequence[Record],
    odd: Oddities,
    *,
    modified_field: str,
    top: str | None,
    ceiling: str,
    page: int,
) -> Page:
    """Key, fingerprint and modified date of each record; odd ones to ``odd``.

    ``top`` is the latest modified date so far; a date later than ``ceiling`` (now
    plus the allowed clock skew) is reported and does not become ``top``. When a
    key repeats, the last copy is in the result and ``repeated`` is set.
    """
    plain = _plain_page(records, odd.key_field, modified_field, top, ceiling)
    if plain is not None:
        return plain
    return read_each(
        records, odd, modified_field=modified_field, top=top, ceiling=ceiling, page=page
    )


def read_each(
    records: Sequence[Record],
    odd: Oddities,
    *,
    modified_field: str,
    top: str | None,
    ceiling: str,
    page: int,
) -> Page:
    """:func:`read_records` one record at a time: any page, odd rows included."""
    fresh: dict[str, Record] = {}
    prints: dict[str, int] = {}
    key_field = odd.key_field
    bad = 0
    futures = odd.counts.future  # before the page
    mine: str | None = None  # the page's own latest believable modified date
    # Epoch-ms stamps (Gainsight's usual spelling) are compared as numbers: only one
    # above the page's running maximum is turned into text and judged, a handful a page.
    top_ms = -1
    prints_as_received = records.fingerprints() if type(records) is RawRows else None
    for at, raw in enumerate(records):
        try:
            key = raw.get(key_field)
            if type(key) is not str or not key:
                key = key_of(raw, key_field)
                if key is None:
                    bad += 1
                    odd.skip(records, raw, page, "no usable key")
                    continue
            fp = fingerprint(raw) if prints_as_received is None else prints_as_received[at]
            fresh[key] = raw
            prints[key] = fp
            stamp = raw.get(modified_field)
            if type(stamp) is int:
                if stamp <= top_ms:  # no later than a stamp already judged: nothing new
                    continue
                text = number_to_date(stamp)
                if type(text) is not str:
                    continue  # not a plausible instant: as before, never a watermark
                if text > ceiling:
                    odd.future(key)
                    continue
                top_ms = stamp
                if mine is None or text > mine:
                    mine = text
                continue
            if type(stamp) is str:  # as received: ISO text in any accepted form
                stamp = normalize_date(stamp)
            elif stamp is not None:
                stamp = number_to_date(stamp)
            if type(stamp) is str and (mine is None or stamp > mine):
                if stamp > ceiling:
                    odd.future(key)
                else:
                    mine = stamp
        except RECORD_ERRORS as exc:
            bad += 1
            odd.skip(records, raw, page, f"unreadable ({exc!r:.200})")
    if not "".join(fresh).isascii():
        bad += _drop_unusable_keys(records, fresh, prints, odd, page)
    repeated = len(fresh) + bad < len(records)
    return Page(
        fresh,
        prints,
        top if mine is None or (top is not None and top >= mine) else mine,
        repeated=repeated,
        latest=mine,
        clean=not (bad or odd.counts.future > futures or repeated),
    )


def _drop_unusable_keys(
    records: Sequence[Record],
    fresh: dict[str, Record],
    prints: dict[str, int],
    odd: Oddities,
    page: int,
) -> int:
    """Drop (and report) the keys that are not valid text; how many."""
    dropped = [k for k in fresh if has_surrogate(k)]
    for key in dropped:
        odd.skip(records, fresh.pop(key), page, "key is not valid text")
        del prints[key]
    return len(dropped)


def _plain_page(
    records: Sequence[Record], key_field: str, modified_field: str, top: str | None, ceiling: str
) -> Page | None:
    """:func:`read_records` for the usual page, a few C-speed passes over it: every
    record a dict with a distinct ASCII text key and an epoch-ms modified date, the
    latest of them plausible and not in the future. ``None`` for any other page, which
    is then read record by record (same result, odd rows reported)."""
    if not records:
        return Page({}, {}, top, repeated=False)
    keys: list[Any]
    stamps: list[Any]
    if type(records) is RawRows:  # read as received: keys and dates read by the client
        keys, stamps = records.keys, records.stamps
    else:
        try:  # (page_fingerprints, below, checks that every record is a dict)
            keys = list(map(itemgetter(key_field), records))  # text: checked next
            stamps = list(map(itemgetter(modified_field), records))  # ints: checked next
        except (KeyError, TypeError, IndexError):  # a record without them, or not a mapping
            return None
    if set(map(type, keys)) != _STR or not all(keys) or not "".join(keys).isascii():
        return None
    if set(map(type, stamps)) != _INT:
        return None
    latest = number_to_date(max(stamps))
    if type(latest) is not str or latest > ceiling:
        return None  # implausible or future stamps are reported by the slow path
    if type(records) is RawRows:
        fingerprints: list[int] | None = records.fingerprints()
    else:
        fingerprints = page_fingerprints(records, mappings=True)
    if fingerprints is None:
        return None
    prints = dict(zip(keys, fingerprints, strict=True))
    if len(prints) != len(records):
        return None  # a key twice: keep_one decides
    if top is None or latest > top:
        top = latest
    return Page(None, prints, top, repeated=False, raw=records, latest=latest, clean=True)


_STR, _INT = {str}, {int}
_FEW = 4  # a page with fewer than a quarter of its records changed parses them one by one


def keep_one(
    records: Sequence[Record], found: Page, odd: Oddities, *, stored: dict[str, int], page: int
) -> None:
    """Keys that came twice in one page: keep one copy each, report the others.

    The copy equal to the stored snapshot is kept if there is one (a tenant that
    sends the copies in a new order each time then changes nothing), else the
    first; either way the choice gives one event at most, never two that
    contradict each other.
    """
    copies: dict[str, list[tuple[int, Record]]] = {}
    prints_as_received = records.fingerprints() if type(records) is RawRows else None
    for at, raw in enumerate(records):
        key = key_of(raw, odd.key_field) if isinstance(raw, dict) else None
        if key is not None and key in found.records:
            try:
                fp = fingerprint(raw) if prints_as_received is None else prints_as_received[at]
                copies.setdefault(key, []).append((fp, raw))
            except RECORD_ERRORS:
                continue  # skipped already
    repeated = [k for k, c in copies.items() if len(c) > 1]
    for key in repeated:
        want = stored.get(key)
        pick = next((c for c in copies[key] if c[0] == want), copies[key][0])
        found.prints[key], found.records[key] = pick
    odd.duplicates([k for k in repeated for _ in copies[k][1:]], page)
