"""The sweep's fast path over a usual page (:func:`watcher.poll.intake.read_records`
reading it in a few C passes, :func:`watcher.core.normalize.page_fingerprints` writing
and hashing its records in C) gives exactly what reading it record by record gives, for any page:
records, fingerprints, watermark, odd rows reported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.core.normalize import fingerprint, page_fingerprints
from watcher.dates import format_utc, from_epoch_ms
from watcher.poll import intake
from watcher.poll.intake import Oddities, Page, read_each, read_records

NOW = 1_790_000_000_000
CEILING = format_utc(from_epoch_ms(NOW))


@dataclass
class Counts:
    skipped: int = 0
    duplicates: int = 0
    future: int = 0


def _odd() -> Oddities:
    return Oddities(Counts(), "companies", "p", "Gsid")


def _both(records: list[Any], top: str | None) -> tuple[Page, Oddities, Page, Oddities]:
    args: dict[str, Any] = {"modified_field": "ModifiedDate", "ceiling": CEILING, "page": 3}
    fast_odd, each_odd = _odd(), _odd()
    fast = read_records(records, fast_odd, top=top, **args)
    each = read_each(records, each_odd, top=top, **args)
    return fast, fast_odd, each, each_odd


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["},{", '"},{"', "\ud800", "é"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
keys = st.sampled_from(["K1", "K2", "K3", "K4", "", "\ud800", "é"]) | st.integers(0, 3)
stamps = st.integers(NOW - 10**10, NOW + 10**9) | st.sampled_from([None, 7, True, "2026-01-01"])


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {"Gsid": draw(keys), "ModifiedDate": draw(stamps)}
    record.update(draw(st.dictionaries(st.sampled_from(["Name", "Arr", "Tags"]), values)))
    return record


@settings(max_examples=300, deadline=None)
@given(st.lists(records(), max_size=8), st.sampled_from([None, "2026-01-01T00:00:00.000Z"]))
def test_the_fast_path_reads_any_page_as_record_by_record_does(
    page: list[dict[str, Any]], top: str | None
) -> None:
    fast, fast_odd, each, each_odd = _both(page, top)
    assert fast.records == each.records
    assert fast.prints == each.prints
    assert (fast.top, fast.repeated) == (each.top, each.repeated)
    assert fast_odd.counts == each_odd.counts
    assert fast_odd.future_keys == each_odd.future_keys


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=5), values, max_size=5), max_size=6))
def test_page_fingerprints_are_each_records_fingerprint_or_none(page: list[Any]) -> None:
    prints = page_fingerprints(page)
    assert prints is None or prints == [fingerprint(r) for r in page]


def test_a_usual_page_takes_the_fast_path() -> None:
    page = [
        {"Gsid": f"K{i}", "Name": f"Co {i}", "Arr": 10.5 * i, "ModifiedDate": NOW - i}
        for i in range(50)
    ]
    prints = page_fingerprints(page)
    assert prints == [fingerprint(r) for r in page]
    assert intake._plain_page(page, "Gsid", "ModifiedDate", None, CEILING) is not None
    fast, _, each, _ = _both(page, None)
    assert fast.prints == each.prints
    assert fast.top == format_utc(from_epoch_ms(NOW))


def test_pages_orjson_cannot_write_are_left_to_record_by_record() -> None:
    """Text orjson refuses, a number beyond 64 bits, a record that is not a dict: no
    page-level fingerprints (never wrong ones)."""
    assert page_fingerprints([{"a": "},{"}, {"b": 1}]) == [
        fingerprint({"a": "},{"}),
        fingerprint({"b": 1}),
    ]
    assert page_fingerprints([{"a": "\ud800"}, {"b": 1}]) is None
    assert page_fingerprints([{"a": 2**64}, {"b": 1}]) is None
    assert page_fingerprints([{"a": 1}, ["b"]]) is None
    assert page_fingerprints([]) == []
    assert page_fingerprints([{}, {}]) == [fingerprint({}), fingerprint({})]


def test_a_record_orjson_cannot_write_still_has_a_steady_fingerprint() -> None:
    odd = {"Gsid": "K1", "Name": "\ud800", "Arr": 2**70}
    assert fingerprint(odd) == fingerprint(dict(odd))
    assert fingerprint(odd) != fingerprint(dict(odd, Arr=2**70 + 1))
