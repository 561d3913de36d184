"""Request bodies: MDA (name/limit/offset) vs Cockpit (fieldName/pageSize/pageNumber)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from watcher.gainsight.query import (
    Condition,
    alias,
    delete_log_value,
    iso_filter_value,
    keys_in,
    mda_object_of,
    modified_since,
    page_size_of,
    query_body,
    render_where,
    select_of,
    style_of,
)
from watcher.gainsight.routes import key_batch_of, paging_of, path_of

from .helpers import source


def test_mda_body_uses_name_value_lists_aliases_order_map_limit_and_offset() -> None:
    body = query_body(
        style="mda",
        select=["Gsid", "Name"],
        page_size=5000,
        page_index=2,
        conditions=[Condition("Stage", "IN", ("A", "B")), Condition("Arr", "GT", (10,))],
        order_by={"ModifiedDate": "asc", "Gsid": "asc"},
    )
    assert body == {
        "select": ["Gsid", "Name"],
        "where": {
            "conditions": [
                {"name": "Stage", "alias": "A", "operator": "IN", "value": ["A", "B"]},
                {"name": "Arr", "alias": "B", "operator": "GT", "value": [10]},
            ],
            "expression": "A AND B",
        },
        "orderBy": {"ModifiedDate": "asc", "Gsid": "asc"},
        "limit": 5000,
        "offset": 10000,
    }


def test_cockpit_body_uses_fieldname_page_size_and_one_based_page_number() -> None:
    body = query_body(
        style="cockpit",
        select=["Gsid"],
        page_size=1000,
        page_index=0,
        conditions=[Condition("ModifiedDate", "EQ", literal="TODAY")],
    )
    assert body == {
        "select": ["Gsid"],
        "where": {
            "conditions": [
                {"fieldName": "ModifiedDate", "alias": "A", "operator": "EQ", "literal": "TODAY"}
            ],
            "expression": "A",
        },
        "pageSize": 1000,
        "pageNumber": 1,
    }


def test_no_conditions_means_no_where_and_an_explicit_expression_is_kept() -> None:
    assert render_where([], "mda") is None
    where = render_where(
        [Condition("A1", "EQ", ("x",)), Condition("B1", "EQ", ("y",))], "mda", "A OR B"
    )
    assert where is not None
    assert where["expression"] == "A OR B"


@pytest.mark.parametrize(("index", "name"), [(0, "A"), (25, "Z"), (26, "AA"), (27, "AB")])
def test_aliases_are_letters(index: int, name: str) -> None:
    assert alias(index) == name


def test_condition_rejects_unknown_operators_and_bare_strings() -> None:
    with pytest.raises(ValueError, match="operator"):
        Condition("Name", "LIKE", ("x",))
    with pytest.raises(TypeError):
        Condition("Name", "IN", "abc")
    assert Condition("Name", "IN", ["a", "b"]).values == ("a", "b")


def test_style_and_page_size_follow_the_source_and_are_clamped_to_the_api_limits() -> None:
    company = source()
    assert style_of(company) == "mda"
    assert page_size_of(company) == 5000
    cta = source(name="ctas", kind="cta")  # default: the documented query route
    assert style_of(cta) == "mda"
    assert path_of(cta) == "/v1/data/objects/query/call_to_action"
    assert page_size_of(cta) == 5000
    cockpit = source(name="ctas", kind="cta", api="cockpit")
    assert style_of(cockpit) == "cockpit"
    assert page_size_of(cockpit) == 1000
    assert page_size_of(source(name="ctas", kind="cta", api="cockpit", page_size=5000)) == 1000
    goal = source(name="goals", kind="goal", paging="offset", path="/v1/data/objects/query/G")
    assert style_of(goal) == "mda"
    assert page_size_of(source(page_size=250)) == 250


def test_select_always_contains_the_key_and_modified_field_once() -> None:
    assert select_of(source(select=("Name", "Gsid"))) == ["Name", "Gsid", "ModifiedDate"]
    # replies are keyed by the selected text: the key is selected as spelled in the config
    assert select_of(source(select=("gsid",))) == ["gsid", "Gsid", "ModifiedDate"]
    assert select_of(source(select=())) == ["Gsid", "ModifiedDate"]
    assert select_of(source(select=("Name",), modified_field="LastModifiedDate")) == [
        "Name",
        "Gsid",
        "LastModifiedDate",
    ]


def test_incremental_filter_is_gte_with_an_iso_offset_in_utc() -> None:
    since = datetime(2024, 5, 1, 2, 0, 30, 999_000, tzinfo=timezone(timedelta(hours=2)))
    cond = modified_since(source(), since)
    assert cond == Condition("ModifiedDate", "GTE", ("2024-05-01T00:00:30+00:00",))
    assert iso_filter_value(datetime(2024, 5, 1)) == "2024-05-01T00:00:00+00:00"


def test_delete_log_filter_uses_space_separated_utc() -> None:
    when = datetime(2024, 2, 5, 7, 17, 16, tzinfo=UTC)
    assert delete_log_value(when) == "2024-02-05 07:17:16"
    assert delete_log_value(datetime(2024, 2, 5)) == "2024-02-05 00:00:00"


def test_keys_in_and_mda_object_names() -> None:
    assert keys_in(source(), ["a", "b"]) == Condition("Gsid", "IN", ("a", "b"))
    assert mda_object_of("/v1/data/objects/query/Company") == "Company"
    assert mda_object_of("/v1/data/objects/query/") is None
    assert mda_object_of("/v2/cockpit/cta/list") is None


def test_cockpit_incremental_filter_is_btw_on_whole_days_covering_any_zone() -> None:
    """Only documented forms on the Cockpit list: BTW and yyyy-MM-dd; 14 h either side."""
    cockpit = source(name="ctas", kind="cta", api="cockpit")
    since = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    cond = modified_since(cockpit, since, until=datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
    assert cond.render("cockpit", "A") == {
        "fieldName": "ModifiedDate",
        "alias": "A",
        "operator": "BTW",
        "value": ["2026-11-22", "2026-11-25"],
    }
    query = modified_since(source(name="ctas", kind="cta"), since)
    assert query.operator == "GTE"
    assert query.values == ("2026-11-23T10:00:00+00:00",)


def test_key_lookups_are_batched_and_counted_by_one_size() -> None:
    """The client's key batches and the engine's call count use one decision: a page's
    worth on the query route, 25 EQ terms on the Cockpit list, whatever page_size says."""
    assert key_batch_of(source()) == 5000
    assert key_batch_of(source(page_size=250)) == 250
    assert key_batch_of(source(name="ctas", kind="cta", api="cockpit", page_size=5000)) == 25
    cockpit = source(name="ctas", kind="cta", api="cockpit", page_size=5000)
    assert paging_of(cockpit) == "page"
    assert path_of(cockpit) == "/v2/cockpit/cta/list"
