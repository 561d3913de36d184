"""The pure matcher: every operator by table, groups, rule scoping, and properties."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.rules.events import event, updated
from watcher.rules.match import build_router, condition_holds, matching_rules, rule_matches
from watcher.rules.models import Condition, Rule


def cond(**kw: Any) -> Condition:
    return Condition.model_validate(kw)


def holds(c: dict[str, Any], ev: Mapping[str, Any]) -> bool:
    return condition_holds(cond(**c), ev["data"], ev["time"])


ARR_DROP = updated("Arr", 100000.0, 90000.0)
ARR_SMALL_DROP = updated("Arr", 100000.0, 95000.0)
STAGE = updated("Stage", "Launched", "Will Churn")
CREATED = event("created", after={"Gsid": "C1", "Name": "Acme", "Arr": 5, "Tags": ["a", "b"]})
DELETED = event("deleted", before={"Gsid": "C1", "Name": "Acme", "Arr": 7, "Stage": "Mature"})

TABLE = [
    # (condition, event, expected, why)
    ({"field": "Arr", "changed": True}, ARR_DROP, True, "Arr is in changes"),
    ({"field": "Name", "changed": True}, ARR_DROP, False, "Name did not change"),
    ({"field": "Name", "changed": False}, ARR_DROP, True, "changed=false negates"),
    ({"field": "Stage", "from": "Launched", "to": "Will Churn"}, STAGE, True, "transition"),
    ({"field": "Stage", "from": "Mature", "to": "Will Churn"}, STAGE, False, "wrong from"),
    ({"field": "Stage", "to": ["Churned", "Will Churn"]}, STAGE, True, "to one of a list"),
    ({"field": "Stage", "from": "Launched"}, ARR_DROP, False, "from needs a change"),
    ({"field": "Arr", "eq": 90000}, ARR_DROP, True, "eq reads after; int == float"),
    ({"field": "Arr", "eq": 100000}, ARR_DROP, False, "eq does not read before"),
    ({"field": "Arr", "ne": 100000}, ARR_DROP, True, "ne"),
    ({"field": "Stage", "in": ["Will Churn", "Churned"]}, STAGE, True, "in"),
    ({"field": "Stage", "not_in": ["Will Churn"]}, STAGE, False, "not_in"),
    ({"field": "Arr", "gt": 80000}, ARR_DROP, True, "gt"),
    ({"field": "Arr", "gte": 90000}, ARR_DROP, True, "gte boundary"),
    ({"field": "Arr", "lt": 90000}, ARR_DROP, False, "lt boundary"),
    ({"field": "Arr", "lte": 90000}, ARR_DROP, True, "lte boundary"),
    ({"field": "Stage", "gt": 5}, STAGE, False, "string vs number never compares"),
    ({"field": "Name", "contains": "cm"}, ARR_DROP, True, "substring"),
    ({"field": "Tags", "contains": "b"}, CREATED, True, "list element"),
    ({"field": "Tags", "contains": "z"}, CREATED, False, "list element missing"),
    ({"field": "Csm", "is_null": True}, ARR_DROP, True, "missing is null"),
    ({"field": "Name", "is_null": False}, ARR_DROP, True, "present is not null"),
    ({"field": "Arr", "crosses_below": 95000}, ARR_DROP, True, "100k -> 90k crosses 95k"),
    ({"field": "Arr", "crosses_below": 90000}, ARR_DROP, False, "landing on t is not below"),
    ({"field": "Arr", "crosses_below": 80000}, ARR_DROP, False, "stays above 80k"),
    ({"field": "Arr", "crosses_above": 95000}, ARR_DROP, False, "a drop never crosses above"),
    (
        {"field": "Arr", "crosses_above": 95000},
        updated("Arr", 90000, 95000),
        True,
        "reaching t from below crosses above",
    ),
    ({"field": "Arr", "decreased_by_pct": 10}, ARR_DROP, True, "exactly 10% down"),
    ({"field": "Arr", "decreased_by_pct": 10}, ARR_SMALL_DROP, False, "5% down"),
    ({"field": "Arr", "increased_by_pct": 1}, ARR_DROP, False, "a drop is no increase"),
    ({"field": "Arr", "increased_by_pct": 50}, updated("Arr", 100, 150), True, "+50%"),
    ({"field": "Arr", "increased_by_pct": 1}, updated("Arr", 0, 10), False, "from zero: no %"),
    ({"field": "Arr", "decreased_by_pct": 1}, updated("Arr", None, 10), False, "from null"),
    ({"field": "Arr", "eq": 7}, DELETED, True, "deleted events read before"),
    ({"field": "Stage", "eq": "Mature"}, DELETED, True, "deleted: before value"),
    ({"field": "Arr", "eq": 5}, CREATED, True, "created: after value"),
    ({"field": "Arr", "changed": True}, CREATED, True, "created: a value is a change from none"),
    ({"field": "Csm", "changed": False}, CREATED, True, "created: an empty field did not change"),
    (
        {"any": [{"field": "Arr", "eq": 1}, {"field": "Stage", "eq": "Will Churn"}]},
        STAGE,
        True,
        "any: one holds",
    ),
    ({"any": [{"field": "Arr", "eq": 1}]}, STAGE, False, "any: none holds"),
    ({"not": {"field": "Stage", "eq": "Will Churn"}}, STAGE, False, "not"),
    (
        {"all": [{"field": "Stage", "changed": True}, {"field": "Name", "eq": "Acme"}]},
        STAGE,
        True,
        "all",
    ),
    ({"field": "Flag", "eq": True}, updated("Flag", False, True), True, "bool eq"),
    ({"field": "Flag", "eq": 1}, updated("Flag", False, True), False, "bool is not 1"),
    (
        {"field": "RenewalDate", "lt": "2027-01-01"},
        updated("RenewalDate", "2027-03-01T00:00:00.000Z", "2026-12-01T00:00:00.000Z"),
        True,
        "date operand normalized and compared",
    ),
    (
        {"field": "DueDate", "overdue": True},
        updated("DueDate", None, "2026-11-01T00:00:00.000Z"),
        True,
        "due date before the event time",
    ),
    (
        {"field": "DueDate", "overdue": True},
        updated("DueDate", None, "2026-12-01T00:00:00.000Z"),
        False,
        "due date still ahead",
    ),
]


@pytest.mark.parametrize(
    ("condition", "ev", "expected"),
    [pytest.param(c, e, x, id=why) for c, e, x, why in TABLE],
)
def test_operator_table(condition: dict[str, Any], ev: dict[str, Any], expected: bool) -> None:
    """Each operator reads before/after as documented in watcher.rules.match."""
    assert holds(condition, ev) is expected


def rule(**kw: Any) -> Rule:
    base: dict[str, Any] = {"name": "r", "sources": ["companies"], "sinks": ["s"]}
    return Rule.model_validate({**base, **kw})


def test_rule_without_when_matches_every_event_of_its_sources_and_changes() -> None:
    r = rule(on=["updated", "deleted"])
    assert rule_matches(r, ARR_DROP)
    assert rule_matches(r, DELETED)
    assert not rule_matches(r, CREATED)
    assert not rule_matches(r, event("updated", source="ctas", before={}, after={"A": 1}))


def test_arr_drop_rule_matches_a_10pct_drop_and_not_a_5pct_one() -> None:
    r = rule(name="arr-drop", on=["updated"], when=[{"field": "Arr", "decreased_by_pct": 10}])
    assert matching_rules([r], ARR_DROP) == [r]
    assert matching_rules([r], ARR_SMALL_DROP) == []


def test_disabled_rules_never_match_or_route() -> None:
    r = rule(enabled=False)
    assert matching_rules([r], ARR_DROP) == []
    assert build_router([r])(ARR_DROP) == []


def test_router_returns_one_route_per_sink_of_each_matching_rule_in_order() -> None:
    a = rule(name="a", sinks=["x", "y"], when=[{"field": "Arr", "changed": True}])
    b = rule(name="b", sinks=["y"], on=["updated"])
    c = rule(name="c", sinks=["z"], when=[{"field": "Stage", "changed": True}])
    assert build_router([a, b, c])(ARR_DROP) == [("a", "x"), ("a", "y"), ("b", "y")]


def test_matcher_tolerates_malformed_events() -> None:
    r = rule(when=[{"field": "Arr", "gt": 1}])
    assert not rule_matches(r, {"data": None})
    assert not rule_matches(r, {})
    broken = {"data": {"source": "companies", "change": "updated", "before": 3, "after": "x"}}
    assert not rule_matches(r, broken)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=5),
)
numbers = st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False, width=32))


@settings(deadline=None)  # a loaded CI machine must not fail on timing
@given(old=scalars, new=scalars, t=numbers)
def test_no_change_crosses_a_threshold_both_ways(old: Any, new: Any, t: float) -> None:
    """crosses_below and crosses_above are exclusive for any one change."""
    ev = updated("Arr", old, new)
    assert not (
        holds({"field": "Arr", "crosses_below": t}, ev)
        and holds({"field": "Arr", "crosses_above": t}, ev)
    )


@settings(deadline=None)  # a loaded CI machine must not fail on timing
@given(old=numbers, new=numbers, t=numbers)
def test_crossing_is_reversible(old: float, new: float, t: float) -> None:
    """A change crosses below t exactly when the reverse change crosses above t."""
    down = holds({"field": "Arr", "crosses_below": t}, updated("Arr", old, new))
    up = holds({"field": "Arr", "crosses_above": t}, updated("Arr", new, old))
    assert down == up


@settings(deadline=None)  # a loaded CI machine must not fail on timing
@given(old=numbers, new=numbers, p=st.floats(0.01, 500), q=st.floats(0.01, 500))
def test_percentage_thresholds_are_monotonic(old: float, new: float, p: float, q: float) -> None:
    """Decreasing by p% implies decreasing by any smaller q%."""
    lo, hi = sorted((p, q))
    ev = updated("Arr", old, new)
    if holds({"field": "Arr", "decreased_by_pct": hi}, ev):
        assert holds({"field": "Arr", "decreased_by_pct": lo}, ev)
    if holds({"field": "Arr", "increased_by_pct": hi}, ev):
        assert holds({"field": "Arr", "increased_by_pct": lo}, ev)


@settings(deadline=None)  # a loaded CI machine must not fail on timing
@given(old=scalars, new=scalars, operand=scalars.filter(lambda v: v is not None))
def test_not_negates_and_single_any_is_identity(old: Any, new: Any, operand: Any) -> None:
    """not {c} == !c, any [c] == c, eq and ne are complements; nothing raises."""
    ev = updated("F", old, new)
    for c in (
        {"field": "F", "eq": operand},
        {"field": "F", "gt": 0},
        {"field": "F", "changed": True},
    ):
        base = holds(c, ev)
        assert holds({"not": c}, ev) is (not base)
        assert holds({"any": [c]}, ev) is base
    assert holds({"field": "F", "eq": operand}, ev) is not holds({"field": "F", "ne": operand}, ev)
    assert holds({"field": "F", "in": [operand]}, ev) is holds({"field": "F", "eq": operand}, ev)


@settings(deadline=None)  # a loaded CI machine must not fail on timing
@given(value=scalars)
def test_unchanged_field_never_changes_or_transitions(value: Any) -> None:
    ev = updated("Other", 1, 2, F=value)
    assert not holds({"field": "F", "changed": True}, ev)
    if value is not None:
        assert not holds({"field": "F", "to": value}, ev)
        assert not holds({"field": "F", "from": value}, ev)
