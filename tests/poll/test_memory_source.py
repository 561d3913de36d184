"""The memory tenant filters with every Gainsight operator, as a tenant would."""

from __future__ import annotations

from typing import Any

import pytest

from watcher.gainsight.query import OPERATORS, Condition
from watcher.testing.memory import matches

DUE = "2026-11-23T10:00:00.000Z"
CASES: list[tuple[Any, str, tuple[Any, ...], bool]] = [
    ("Active", "EQ", ("Active",), True),
    ("Active", "EQ", ("Churned",), False),
    ("Active", "NE", ("Churned",), True),
    (None, "NE", ("Churned",), True),
    (42, "IN", ("41", "42"), True),
    (42, "NOT_IN", ("41", "42"), False),
    (10, "GT", (9.5,), True),
    (10, "GT", (10,), False),
    (10, "GTE", (10,), True),
    (9, "LT", (10,), True),
    (10, "LTE", (10,), True),
    ("1P02B", "GTE", ("1P02A",), True),  # keys as text
    ("1P02B", "LT", ("1P02A",), False),
    (DUE, "GTE", ("2026-11-23T09:59:59+00:00",), True),
    (1_795_428_000_000, "LT", ("2026-11-23T11:00:00+00:00",), True),  # epoch ms vs ISO
    (DUE, "BTW", ("2026-11-22", "2026-11-23"), True),  # a bare day covers the whole day
    (DUE, "BTW", ("2026-11-24", "2026-11-25"), False),
    (None, "GTE", ("2026-11-22",), False),
    ("Acme Corp", "CONTAINS", ("me C",), True),
    ("Acme Corp", "STARTS_WITH", ("Acme",), True),
    ("Acme Corp", "ENDS_WITH", ("Acme",), False),
    (None, "CONTAINS", ("x",), False),
    ("red;green", "INCLUDES", ("green",), True),
    (["red", "green"], "INCLUDES", ("blue", "red"), True),
    ("red", "INCLUDES", ("blue",), False),
    (None, "IS_NULL", (), True),
    ("", "IS_NULL", (), True),
    (0, "IS_NULL", (), False),
    ("x", "IS_NOT_NULL", (), True),
]


@pytest.mark.parametrize(("value", "operator", "values", "expected"), CASES)
def test_each_operator_filters_as_a_tenant_would(
    value: Any, operator: str, values: tuple[Any, ...], expected: bool
) -> None:
    assert matches(value, Condition("DueDate", operator, values)) is expected


def test_every_operator_the_client_knows_is_covered() -> None:
    assert {op for _, op, _, _ in CASES} == OPERATORS


def test_a_cockpit_literal_is_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match="give the values instead"):
        matches(DUE, Condition("DueDate", "EQ", (), literal="TODAY"))
