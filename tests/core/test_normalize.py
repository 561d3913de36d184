"""Normalization: one canonical form for every spelling of the same value."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.core.normalize import (
    MAX_DEPTH,
    TOO_DEEP,
    canonical_json,
    fingerprint,
    normalize_record,
    normalize_records,
    normalize_value,
    same_value,
)

SAME = [
    # (field, a, b): two spellings that must normalize to equal values
    ("Arr", json.loads("998765.0"), json.loads("998765.00000000000")),
    ("Arr", 22, 22.0),
    ("Arr", -5, -5.0),
    ("RenewalDate", 1521743018667, "2018-03-22T18:23:38.667Z"),
    ("RenewalDate", 1521743018667.0, "2018-03-22T18:23:38.667+00:00"),
    ("ModifiedDate", "2024-02-05T08:34:35Z", "2024-02-05T08:34:35.000Z"),
    ("ModifiedDate", "2024-02-05T10:34:35.253+02:00", "2024-02-05T08:34:35.253Z"),
    ("DueDate", "2024-02-19", "2024-02-19T00:00:00Z"),
    ("Address", {"city": "Oslo", "zip": "0150"}, {"zip": "0150", "city": "Oslo"}),
    ("Tags", [1.0, "2024-02-19"], [1, "2024-02-19T00:00:00.000Z"]),
]

DIFFERENT = [
    ("IsClosed", True, 1),
    ("IsClosed", False, 0),
    ("Arr", 998765.5, 998765),
    ("Name", "2024-02-19 kickoff", "2024-02-19T00:00:00.000Z kickoff"),
    ("Employees", 1521743018667, "2018-03-22T18:23:38.667Z"),  # not a date field
    ("Tags", ["a", "b"], ["b", "a"]),  # list order is data
    ("Csm", None, ""),
]


@pytest.mark.parametrize(("field", "a", "b"), SAME)
def test_spellings_of_one_value_normalize_equal(field: str, a: Any, b: Any) -> None:
    """Float precision, int vs float, epoch-ms vs ISO and key order are not differences."""
    na, nb = normalize_value(a, field), normalize_value(b, field)
    assert same_value(na, nb)
    assert canonical_json(na) == canonical_json(nb)


@pytest.mark.parametrize(("field", "a", "b"), DIFFERENT)
def test_distinct_values_stay_distinct(field: str, a: Any, b: Any) -> None:
    """True is not 1, list order matters, numbers in non-date fields are not dates."""
    assert not same_value(normalize_value(a, field), normalize_value(b, field))


def test_record_fingerprint_ignores_spelling() -> None:
    """Two readings of the same record, spelled differently, have one fingerprint."""
    a = {"Gsid": "1P02A", "Arr": 100000.0, "RenewalDate": 1521743018667, "Name": "IBM"}
    b = {"Gsid": "1P02A", "Arr": 100000, "RenewalDate": "2018-03-22T18:23:38.667Z", "Name": "IBM"}
    assert fingerprint(normalize_record(a)) == fingerprint(normalize_record(b))
    c = dict(b, Arr=100001)
    assert fingerprint(normalize_record(a)) != fingerprint(normalize_record(c))


def test_fingerprint_fits_sqlite_integer() -> None:
    value = fingerprint({"a": 1})
    assert -(2**63) <= value < 2**63


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(
        ["2024-02-05T08:34:35Z", "2024-02-19", "2024-02-05T10:34:35.253+02:00", "1P02X"]
    )
    | st.integers(min_value=946_684_800_000, max_value=4_102_444_800_000)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(["Name", "Arr", "RenewalDate", "ModifiedDate", "Tags", "x__gc"])


@given(st.dictionaries(field_names, json_values, max_size=6))
def test_normalization_is_idempotent(record: dict[str, Any]) -> None:
    """normalize(normalize(r)) == normalize(r), value for value and in canonical JSON."""
    once = normalize_record(record)
    twice = normalize_record(once)
    assert canonical_json(once) == canonical_json(twice)
    assert fingerprint(once) == fingerprint(twice)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, json.loads("1e400")])
def test_non_finite_numbers_become_null(value: float) -> None:
    """NaN and Infinity (also 1e400, which JSON parses to inf) have no JSON spelling and
    NaN never equals itself: they normalize to None, nested too."""
    assert normalize_value(value, "Arr") is None
    assert normalize_value(value, "RenewalDate") is None
    record = normalize_record({"Arr": value, "Tags": [value], "Extra": {"x": value}})
    assert record == {"Arr": None, "Tags": [None], "Extra": {"x": None}}
    assert same_value(normalize_value(value), normalize_value(value))


def test_lone_surrogates_are_replaced_in_values_and_field_names() -> None:
    """ "\\ud800" is a legal JSON escape but not text: it becomes U+FFFD everywhere."""
    record = normalize_record(
        {"Name": "A\ud800B", "Bad\udfffName": 1, "Tags": ["x\udc00"], "Obj": {"k\ud800": "v"}}
    )
    assert record == {
        "Name": "A\ufffdB",
        "Bad\ufffdName": 1,
        "Tags": ["x\ufffd"],
        "Obj": {"k\ufffd": "v"},
    }
    canonical_json(record).encode("utf-8")
    assert normalize_record({"Name": "Zoë 😀"}) == {"Name": "Zoë 😀"}


def test_deep_nesting_is_bounded_not_a_recursion_error() -> None:
    """A value nested 500 deep is cut at MAX_DEPTH levels; the result is idempotent."""
    value: Any = "bottom"
    for _ in range(500):
        value = {"child": [value]}
    record = normalize_record({"Payload": value})
    depth, node = 0, record["Payload"]
    while isinstance(node, dict | list):
        node = node["child"] if isinstance(node, dict) else node[0]
        depth += 1
    assert depth == MAX_DEPTH
    assert node == TOO_DEEP
    assert normalize_record(record) == record
    canonical_json(record)


def test_date_fields_decide_for_names_that_do_not_look_like_dates() -> None:
    """`Deadline` as epoch ms is a date when listed; unlisted it stays a number."""
    ms = 1_764_547_200_000
    assert normalize_record({"Deadline": ms}) == {"Deadline": ms}
    assert normalize_record({"Deadline": ms}, ("Deadline",)) == {
        "Deadline": "2025-12-01T00:00:00.000Z"
    }
    assert normalize_record({"Deadline": float(ms)}, ("Deadline",)) == {
        "Deadline": "2025-12-01T00:00:00.000Z"
    }
    assert normalize_record({"Deadline": 42}, ("Deadline",)) == {"Deadline": 42}  # implausible
    assert normalize_record({"RenewalDate": ms})["RenewalDate"].startswith("2025")  # by name


def test_date_fields_when_set_are_the_only_fields_whose_numbers_are_dates() -> None:
    """A source's `date_fields` decides when set: a date-like name it does not list keeps
    its number (a count in `RenewalDate`); ISO text is still a date in any field."""
    ms = 1_764_547_200_000
    out = normalize_record(
        {"RenewalDate": ms, "Deadline": ms, "Note": "2025-12-01T00:00:00Z"}, ("Deadline",)
    )
    assert out == {
        "RenewalDate": ms,
        "Deadline": "2025-12-01T00:00:00.000Z",
        "Note": "2025-12-01T00:00:00.000Z",
    }
    assert normalize_record({"RenewalDate": float(ms)}, ("Deadline",)) == {"RenewalDate": ms}


def _exact(records: list[dict[str, Any]]) -> list[str]:
    """Each record as text that tells 1 from 1.0 and keeps the field order."""
    return [json.dumps(r, sort_keys=False) for r in records]


column_values = (
    json_scalars
    | st.sampled_from(["1P02X\x00", "2024-02-05", "é", "\ud800", "1234-"])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.lists(json_scalars, max_size=2)
)


@st.composite
def pages(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Pages whose records mostly share their fields, with columns of one kind of value."""
    fields = draw(st.lists(field_names | st.sampled_from(["Csm", "\ud800x"]), unique=True))
    kinds = {f: draw(st.sampled_from(["same", "mixed"])) for f in fields}
    kind_of = {f: draw(column_values) for f in fields}
    out = []
    for _ in range(draw(st.integers(0, 12))):
        record = {}
        for f in fields:
            if kinds[f] == "same" and draw(st.booleans()):
                value = kind_of[f]
                if isinstance(value, int | float) and not isinstance(value, bool):
                    value = value + draw(st.integers(0, 10**6))
                record[f] = value
            else:
                record[f] = draw(column_values)
        if draw(st.integers(0, 9)) == 0:
            record.pop(next(iter(record), ""), None)
            record["Other"] = 1
        out.append(record)
    return out


@given(pages(), st.sampled_from([(), ("Csm",), ("Arr", "RenewalDate")]))
def test_a_page_normalized_by_columns_is_each_record_normalized(
    page: list[dict[str, Any]], date_fields: tuple[str, ...]
) -> None:
    expected = [normalize_record(r, date_fields) for r in page]
    assert _exact(normalize_records(page, date_fields)) == _exact(expected)


def test_a_usual_page_is_normalized_by_columns() -> None:
    page = [
        {"Gsid": f"1P02{i:04d}", "Arr": 10.0 * i, "RenewalDate": 1_790_000_000_000 + i}
        for i in range(20)
    ]
    out = normalize_records(page)
    assert out == [normalize_record(r) for r in page]
    assert out[3] == {"Gsid": "1P020003", "Arr": 30, "RenewalDate": "2026-09-21T14:13:20.003Z"}
    assert page[3]["Arr"] == 30.0  # the input is not touched


def test_a_date_column_of_repeated_values_keeps_booleans_apart_from_0_and_1() -> None:
    """Repeated dates are turned once each; True and 1 (equal as keys) stay themselves."""
    values = [True, 1, 1, 1, 1, 1, 1, 1, 1, False, 0, 0, 0, 1_790_000_000_000, None, 0]
    page = [{"RenewalDate": v} for v in values]
    out = normalize_records(page)
    assert [repr(r["RenewalDate"]) for r in out] == [
        repr(normalize_record(r)["RenewalDate"]) for r in page
    ]
    repeated = [{"RenewalDate": 1_790_000_000_000 + (i % 3)} for i in range(30)]
    assert normalize_records(repeated) == [normalize_record(r) for r in repeated]
