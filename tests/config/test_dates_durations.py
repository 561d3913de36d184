"""Date normalization and duration parsing (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.dates import format_utc, normalize_date, parse_when, to_epoch_ms
from watcher.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "field", "expected"),
    [
        (1521743018667, "RenewalDate", "2018-03-22T18:23:38.667Z"),
        ("2018-03-22T18:23:38.667Z", "RenewalDate", "2018-03-22T18:23:38.667Z"),
        ("2018-03-22T18:23:38Z", "X", "2018-03-22T18:23:38.000Z"),
        ("2018-03-22T20:23:38.667+02:00", "X", "2018-03-22T18:23:38.667Z"),
        ("2018-03-22T13:23:38-0500", "X", "2018-03-22T18:23:38.000Z"),
        ("2024-02-19", "DueDate", "2024-02-19T00:00:00.000Z"),
        ("2024-02-05 08:34:35", "DeletedOn", "2024-02-05T08:34:35.000Z"),
        (1521743018667, "Employees", 1521743018667),
        (998765.0, "Arr", 998765.0),
        ("Heroku", "Name", "Heroku"),
        ("2024-13-45", "DueDate", "2024-13-45"),
        (True, "IsClosedDate", True),
        (None, "RenewalDate", None),
    ],
)
def test_normalize_date_table(value: object, field: str, expected: object) -> None:
    assert normalize_date(value, field) == expected


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1)))
def test_epoch_ms_and_iso_of_one_instant_normalize_alike(moment: datetime) -> None:
    """The same instant as epoch-ms or ISO text gives one canonical string."""
    aware = moment.replace(tzinfo=UTC, microsecond=(moment.microsecond // 1000) * 1000)
    as_iso = format_utc(aware)
    assert normalize_date(to_epoch_ms(aware), "ModifiedDate") == as_iso
    assert normalize_date(as_iso, "ModifiedDate") == as_iso
    assert normalize_date(normalize_date(as_iso, "x"), "x") == as_iso


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10m", 600), ("1h30m", 5400), ("45s", 45), ("2d", 172800), ("250ms", 0.25), ("0s", 0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "10x", "m10", "10m-"])
def test_parse_duration_rejects_garbage_with_advice(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\."):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    assert format_duration(3900) == "1h5m"
    assert parse_duration(format_duration(93784)) == 93784
    assert format_duration(0.5) == "500ms"


def test_parse_when_accepts_iso_and_relative() -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse_when("2h", now) == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert parse_when("2026-11-23", now) == datetime(2026, 11, 23, tzinfo=UTC)
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_when("yesterday", now)
