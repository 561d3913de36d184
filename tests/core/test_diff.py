"""The pure diff: tables of cases and Hypothesis properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.core.diff import (
    Change,
    FieldChange,
    Touch,
    apply,
    compare,
    diff,
    field_changes,
    key_of,
    normalize_state,
    record_key,
)

KEY = "Gsid"


def rec(key: str, **fields: Any) -> dict[str, Any]:
    return {"Gsid": key, **fields}


def test_created_updated_deleted_with_field_level_old_new() -> None:
    """A new key is created, a changed field is updated with old/new, a missing key deleted."""
    previous = normalize_state([rec("A", Arr=100000.0), rec("B", Stage="Launched")], KEY)
    result = diff(previous, [rec("A", Arr=90000.0), rec("C", Stage="New")], KEY)
    assert [(c.change, c.key) for c in result.changes] == [
        ("updated", "A"),
        ("deleted", "B"),
        ("created", "C"),
    ]
    updated, deleted, created = result.changes
    assert updated.changes == {"Arr": FieldChange(100000, 90000)}
    assert updated.before == {"Gsid": "A", "Arr": 100000}
    assert updated.after == {"Gsid": "A", "Arr": 90000}
    assert deleted.before == {"Gsid": "B", "Stage": "Launched"}
    assert deleted.after is None
    assert created.before is None
    assert created.after == {"Gsid": "C", "Stage": "New"}


CASES = [
    # (before, after, ignore, expected kind, expected changed fields)
    (rec("A", Arr=998765.0), rec("A", Arr=998765.00000000000), (), None, set()),
    (rec("A", Arr=22), rec("A", Arr=22.0), (), None, set()),
    (
        rec("A", RenewalDate=1521743018667),
        rec("A", RenewalDate="2018-03-22T18:23:38.667Z"),
        (),
        None,
        set(),
    ),
    (rec("A", X={"a": 1, "b": 2}), rec("A", X={"b": 2, "a": 1}), (), None, set()),
    (
        rec("A", Arr=1, ModifiedDate="2024-01-01"),
        rec("A", Arr=1, ModifiedDate="2024-01-02"),
        ("ModifiedDate",),
        "touch",
        set(),
    ),
    (
        rec("A", Arr=1, ModifiedDate="2024-01-01"),
        rec("A", Arr=2, ModifiedDate="2024-01-02"),
        ("ModifiedDate",),
        "updated",
        {"Arr"},
    ),
    (rec("A", IsClosed=True), rec("A", IsClosed=1), (), "updated", {"IsClosed"}),
    (rec("A", Csm=None), rec("A"), (), "touch", set()),  # missing reads as null
    (rec("A"), rec("A", Csm="1P01"), (), "updated", {"Csm"}),
    (rec("A", Tags=["a", "b"]), rec("A", Tags=["b", "a"]), (), "updated", {"Tags"}),
]


@pytest.mark.parametrize(("before", "after", "ignore", "kind", "fields"), CASES)
def test_compare_table(
    before: dict[str, Any],
    after: dict[str, Any],
    ignore: tuple[str, ...],
    kind: str | None,
    fields: set[str],
) -> None:
    """Spelling differences are nothing, ignored-only differences are a silent touch."""
    b = normalize_state([before], KEY)["A"]
    a = normalize_state([after], KEY)["A"]
    out = compare("A", b, a, ignore)
    if kind is None:
        assert out is None
    elif kind == "touch":
        assert isinstance(out, Touch)
        assert out.after == a
    else:
        assert isinstance(out, Change)
        assert out.change == kind
        assert set(out.changes) == fields


def test_ignored_field_changes_update_the_snapshot_silently() -> None:
    """A change only in ignore_fields is not an update, but apply() still takes it."""
    previous = normalize_state([rec("A", Arr=1, ModifiedDate="2024-01-01T00:00:00Z")], KEY)
    new = [rec("A", Arr=1, ModifiedDate="2024-01-02T00:00:00Z")]
    result = diff(previous, new, KEY, ignore_fields=("ModifiedDate",))
    assert result.changes == []
    assert apply(previous, result) == normalize_state(new, KEY)


def test_record_without_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="Gsid"):
        record_key({"Name": "x"}, KEY)


keys = st.sampled_from([f"K{i}" for i in range(8)])
values = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([1.0, 2.5, "a", "b", "2024-02-19", 1521743018667, [1, 2], {"x": 1}])
)
records = st.fixed_dictionaries(
    {}, optional={"Arr": values, "Stage": values, "RenewalDate": values, "ModifiedDate": values}
)
states = st.dictionaries(keys, records, max_size=8).map(
    lambda d: [dict(v, Gsid=k) for k, v in d.items()]
)
ignores = st.sampled_from([(), ("ModifiedDate",), ("Arr", "Stage")])


@given(states)
def test_diff_of_a_state_with_itself_is_empty(a: list[dict[str, Any]]) -> None:
    """diff(a, a) has no change and no touch."""
    state = normalize_state(a, KEY)
    assert not diff(state, a, KEY)


@given(states, states, ignores)
def test_applying_diff_a_b_to_a_gives_b(
    a: list[dict[str, Any]], b: list[dict[str, Any]], ignore: tuple[str, ...]
) -> None:
    """apply(a, diff(a, b)) == b, whatever fields are ignored."""
    state_a = normalize_state(a, KEY)
    assert apply(state_a, diff(state_a, b, KEY, ignore)) == normalize_state(b, KEY)


@given(states, states, ignores)
def test_changes_never_mention_ignored_fields(
    a: list[dict[str, Any]], b: list[dict[str, Any]], ignore: tuple[str, ...]
) -> None:
    """An update lists at least one field and never an ignored one."""
    for change in diff(normalize_state(a, KEY), b, KEY, ignore).changes:
        if change.change == "updated":
            assert change.changes
            assert not set(change.changes) & set(ignore)


@pytest.mark.parametrize(("old", "new"), [("", None), (None, ""), ("", "MISSING")])
def test_empty_string_and_null_are_the_same_no_value(old: Any, new: Any) -> None:
    """ "" -> null (or a missing field) is a touch, not a change."""
    before = normalize_state([rec("A", Stage=old)], KEY)["A"]
    after_fields = {} if new == "MISSING" else {"Stage": new}
    after = normalize_state([rec("A", **after_fields)], KEY)["A"]
    assert isinstance(compare("A", before, after), Touch)
    assert field_changes({"x": ""}, {"x": "a"}) == {"x": FieldChange("", "a")}


@pytest.mark.parametrize(
    ("key", "usable"),
    [("1P02X", "1P02X"), (None, None), ("", None), ("1P02\ud800", None), (7, "7"), (True, None)],
)
def test_key_of_rejects_unusable_keys(key: Any, usable: str | None) -> None:
    """Null, empty, non-scalar keys and keys with a lone surrogate are not usable."""
    assert key_of({KEY: key}, KEY) == usable
