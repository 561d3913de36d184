"""The MDA query engine (`POST /v1/data/objects/query/{Object}`) over loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.sim.conftest import Api
from watcher.clock import FakeClock
from watcher.dates import to_epoch_ms
from watcher.testing.sim import running_sim


@pytest.fixture(scope="module")
def shared_api() -> Iterator[Api]:
    """One read-only sim for the whole module (starting one per test costs ~0.1 s each)."""
    with running_sim(
        companies=120, ctas=60, goals=12, seed=3, clock=FakeClock(), requests_per_minute=10**6
    ) as sim:
        api = Api(sim)
        yield api
        api.http.close()


@pytest.fixture
def api(shared_api: Api, make_api: Callable[..., Api], request: pytest.FixtureRequest) -> Api:
    """The shared sim, unless the test also asks for ``fresh`` (it changes options or data)."""
    if "fresh" in request.fixturenames:
        return make_api(companies=120, ctas=60, goals=12, seed=3)
    return shared_api


@pytest.fixture
def fresh() -> None:
    """Marker fixture: this test gets its own sim."""


def truth(api: Api, obj: str = "Company") -> list[dict[str, Any]]:
    tenant = api.sim.tenant
    return [r for k in tenant.keys(obj) if (r := tenant.get(obj, k)) is not None]


def where(*conds: dict[str, Any], expression: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"conditions": list(conds)}
    if expression is not None:
        body["expression"] = expression
    return body


def cond(name: str, op: str, *values: Any, alias: str = "A") -> dict[str, Any]:
    return {"name": name, "alias": alias, "operator": op, "value": list(values)}


def gsids(api: Api, body: dict[str, Any], obj: str = "Company") -> list[str]:
    body = {"select": ["Gsid"], "limit": 5000, **body}
    return [r["Gsid"] for r in api.records(obj, body)]


def test_select_returns_exactly_the_selected_keys(api: Api) -> None:
    rows = api.records("Company", {"select": ["Gsid", "Name", "Arr"], "limit": 3})
    assert [set(r) for r in rows] == [{"Gsid", "Name", "Arr"}] * 3


def test_lookup_keys_are_echoed_verbatim_and_resolved(api: Api) -> None:
    """`csm__gr.email` comes back under that exact key with the CSM user's email."""
    rows = api.records(
        "Company", {"select": ["Gsid", "Csm", "csm__gr.email", "Stage__gr.Name"], "limit": 50}
    )
    tenant = api.sim.tenant
    for row in rows:
        assert set(row) == {"Gsid", "Csm", "csm__gr.email", "Stage__gr.Name"}
        user = tenant.get("gsuser", row["Csm"]) if row["Csm"] else None
        assert row["csm__gr.email"] == (user["Email"] if user else None)
        stage = tenant.get("Company", row["Gsid"])
        assert stage is not None
        assert row["Stage__gr.Name"] == tenant.picklists.label(stage["Stage"])


def test_two_level_lookup_from_cta_to_company_csm(api: Api) -> None:
    rows = api.records(
        "call_to_action", {"select": ["CompanyId", "CompanyId__gr.Csm__gr.Email"], "limit": 10}
    )
    tenant = api.sim.tenant
    for row in rows:
        company = tenant.get("Company", row["CompanyId"])
        assert company is not None
        user = tenant.get("gsuser", company["Csm"]) if company["Csm"] else None
        assert row["CompanyId__gr.Csm__gr.Email"] == (user["Email"] if user else None)


@pytest.mark.parametrize(
    "select", [["Gsid", "NoSuchField"], ["Csm__gr.Nope"], ["Name__gr.Name"], [], "Gsid", None]
)
def test_bad_select_is_an_error_envelope(api: Api, select: Any) -> None:
    reply = api.query("Company", {"select": select, "limit": 1})
    assert reply.status_code == 400
    body = reply.json()
    assert body["result"] is False
    assert body["errorCode"] == "GSOBJ_1008"


NUMERIC_CASES: list[tuple[str, list[Any], Callable[[float, list[Any]], bool]]] = [
    ("EQ", [1000], lambda v, a: v == a[0]),
    ("NE", [1000], lambda v, a: v != a[0]),
    ("GT", [20000], lambda v, a: v > a[0]),
    ("GTE", [20000], lambda v, a: v >= a[0]),
    ("LT", [20000], lambda v, a: v < a[0]),
    ("LTE", [20000], lambda v, a: v <= a[0]),
    ("BTW", [10000, 30000], lambda v, a: a[0] <= v <= a[1]),
]


@pytest.mark.parametrize(("op", "args", "check"), NUMERIC_CASES)
def test_numeric_operators(
    api: Api, op: str, args: list[Any], check: Callable[[float, list[Any]], bool]
) -> None:
    records = truth(api)
    if op in ("EQ", "NE"):
        args = [records[0]["Employees"]]
    expected = [r["Gsid"] for r in records if check(r["Employees"], args)]
    assert gsids(api, {"where": where(cond("Employees", op, *args))}) == expected
    assert expected  # the case is not vacuous


def test_in_and_not_in(api: Api) -> None:
    records = truth(api)
    names = [records[0]["Name"], records[5]["Name"], "nobody"]
    inside = [r["Gsid"] for r in records if r["Name"] in names]
    outside = [r["Gsid"] for r in records if r["Name"] not in names]
    assert gsids(api, {"where": where(cond("Name", "IN", *names))}) == inside
    assert gsids(api, {"where": where(cond("Name", "NOT_IN", *names))}) == outside
    assert len(inside) >= 2


@pytest.mark.parametrize(
    ("op", "needle", "check"),
    [
        ("CONTAINS", "corp", lambda s, n: n in s.lower()),
        ("STARTS_WITH", "acme", lambda s, n: s.lower().startswith(n)),
        ("ENDS_WITH", "7", lambda s, n: s.lower().endswith(n)),
    ],
)
def test_string_operators_are_case_insensitive(
    api: Api, op: str, needle: str, check: Callable[[str, str], bool]
) -> None:
    expected = [r["Gsid"] for r in truth(api) if check(r["Name"], needle)]
    assert gsids(api, {"where": where(cond("Name", op, needle.upper()))}) == expected
    assert expected


def test_null_operators(api: Api) -> None:
    records = truth(api)
    nulls = [r["Gsid"] for r in records if r["TickerSymbol"] is None]
    not_nulls = [r["Gsid"] for r in records if r["TickerSymbol"] is not None]
    assert gsids(api, {"where": where(cond("TickerSymbol", "IS_NULL"))}) == nulls
    assert gsids(api, {"where": where(cond("TickerSymbol", "IS_NOT_NULL"))}) == not_nulls
    assert nulls
    assert not_nulls


def test_picklist_filters_accept_labels_and_item_ids(api: Api) -> None:
    """The doc sample filters Stage by label; item GSIDs work too."""
    tenant = api.sim.tenant
    launched = tenant.picklists.id_for("Stage", "Launched")
    expected = [r["Gsid"] for r in truth(api) if r["Stage"] == launched]
    by_label = gsids(api, {"where": where(cond("Stage", "IN", "Launched", "Nope"))})
    by_id = gsids(api, {"where": where(cond("Stage", "EQ", launched))})
    assert by_label == by_id == expected
    assert expected


def test_lookup_fields_are_filterable(api: Api) -> None:
    tenant = api.sim.tenant
    first = truth(api)[0]
    user = tenant.get("gsuser", first["Csm"])
    assert user is not None
    expected = [r["Gsid"] for r in truth(api) if r["Csm"] == first["Csm"]]
    assert gsids(api, {"where": where(cond("Csm__gr.Email", "EQ", user["Email"]))}) == expected


@pytest.mark.parametrize(
    ("expression", "check"),
    [
        ("A AND B", lambda a, b, c: a and b),
        ("A OR B", lambda a, b, c: a or b),
        ("a and b or c", lambda a, b, c: (a and b) or c),
        ("A AND (B OR C)", lambda a, b, c: a and (b or c)),
        ("(A OR B) AND NOT_USED_IS_ERROR", None),
        ("A AND", None),
        ("A B", None),
        ("(A OR B", None),
        ("A $ B", None),
    ],
)
def test_expressions_combine_aliases(
    api: Api, expression: str, check: Callable[[bool, bool, bool], bool] | None
) -> None:
    """AND binds tighter than OR, parentheses group, bad expressions are 400."""
    conds = (
        cond("Employees", "GT", 20000, alias="A"),
        cond("Arr", "LT", 1_000_000, alias="B"),
        cond("Name", "CONTAINS", "inc", alias="C"),
    )
    body = {"where": where(*conds, expression=expression)}
    if check is None:
        reply = api.query("Company", {"select": ["Gsid"], **body})
        assert reply.status_code == 400
        assert reply.json()["errorCode"] == "GSOBJ_1008"
        return
    expected = [
        r["Gsid"]
        for r in truth(api)
        if check(r["Employees"] > 20000, r["Arr"] < 1_000_000, "inc" in r["Name"].lower())
    ]
    assert gsids(api, body) == expected


def test_without_expression_all_conditions_must_hold(api: Api) -> None:
    body = {
        "where": where(
            cond("Employees", "GT", 20000, alias="A"), cond("Arr", "LT", 1_000_000, alias="B")
        )
    }
    expected = [r["Gsid"] for r in truth(api) if r["Employees"] > 20000 and r["Arr"] < 1_000_000]
    assert gsids(api, body) == expected


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "Employees", "alias": "A", "operator": "LIKE", "value": [1]},
        {"name": "Nope", "alias": "A", "operator": "EQ", "value": [1]},
        {"fieldName": "Employees", "alias": "A", "operator": "EQ", "value": [1]},
        {"name": "Employees", "alias": "A", "operator": "EQ", "value": 1},
        {"name": "Employees", "alias": "A", "operator": "BTW", "value": [1]},
        {"name": "Employees", "alias": "A", "operator": "EQ", "value": ["many"]},
        {"name": "Employees", "alias": "A", "operator": "EQ", "value": []},
    ],
)
def test_bad_conditions_are_400(api: Api, bad: dict[str, Any]) -> None:
    reply = api.query("Company", {"select": ["Gsid"], "where": {"conditions": [bad]}})
    assert reply.status_code == 400
    assert reply.json()["errorCode"] in ("GSOBJ_1008", "GSOBJ_1002")


def test_order_by_map_with_several_keys(api: Api) -> None:
    tenant = api.sim.tenant
    rows = api.records(
        "Company",
        {
            "select": ["Gsid", "Stage", "Arr"],
            "orderBy": {"Stage": "asc", "Arr": "DESC"},
            "limit": 5000,
        },
    )
    expected = sorted(truth(api), key=lambda r: (r["Stage"], -r["Arr"]))
    assert [r["Gsid"] for r in rows] == [r["Gsid"] for r in expected]
    assert tenant.keys("Company") != [r["Gsid"] for r in rows]


def test_order_by_modified_date_then_gsid_for_keyset_paging(api: Api) -> None:
    rows = api.records(
        "Company",
        {"select": ["Gsid", "ModifiedDate"], "orderBy": {"ModifiedDate": "asc", "Gsid": "asc"}},
    )
    pairs = [(r["ModifiedDate"], r["Gsid"]) for r in rows]
    assert pairs == sorted(pairs)


@pytest.mark.parametrize("order", [{"Nope": "asc"}, {"Name": "up"}, ["Name"]])
def test_bad_order_by_is_400(api: Api, order: Any) -> None:
    reply = api.query("Company", {"select": ["Gsid"], "orderBy": order})
    assert reply.status_code == 400


def test_limit_offset_pages_cover_every_record_once(api: Api) -> None:
    """0-based offset; paging until a short page returns every record exactly once."""
    seen: list[str] = []
    offset = 0
    while True:
        page = gsids(api, {"limit": 25, "offset": offset})
        seen += page
        offset += 25
        if len(page) < 25:
            break
    assert seen == api.sim.tenant.keys("Company")
    assert gsids(api, {"limit": 5, "offset": 10}) == seen[10:15]
    assert gsids(api, {"limit": 5, "offset": 10_000}) == []


def test_default_limit_is_100(make_api: Callable[..., Api]) -> None:
    api = make_api(companies=150)
    assert len(api.records("Company", {"select": ["Gsid"]})) == 100


def test_limit_over_5000_is_an_error_by_default(api: Api) -> None:
    reply = api.query("Company", {"select": ["Gsid"], "limit": 5001})
    assert reply.status_code == 400
    assert reply.json()["errorCode"] == "GSOBJ_1008"
    assert len(api.records("Company", {"select": ["Gsid"], "limit": 5000})) == 120


def test_limit_over_5000_is_clamped_when_switched(make_api: Callable[..., Api]) -> None:
    api = make_api(companies=5100, ctas=0, goals=0, over_limit="clamp")
    assert len(api.records("Company", {"select": ["Gsid"], "limit": 9000})) == 5000


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (-1, 0), (10, -1), ("10", 0), (True, 0)])
def test_bad_limit_or_offset_is_400(api: Api, limit: Any, offset: Any) -> None:
    reply = api.query("Company", {"select": ["Gsid"], "limit": limit, "offset": offset})
    assert reply.status_code == 400


def _modified_after(api: Api, cut: datetime) -> list[str]:
    ms = to_epoch_ms(cut)
    return [r["Gsid"] for r in truth(api) if r["ModifiedDate"] >= ms]


@pytest.mark.parametrize(
    "value",
    [
        "2026-09-01T00:00:00+00:00",
        "2026-09-01T02:00:00+02:00",
        "2026-09-01T00:00:00Z",
        "2026-09-01T00:00:00.000Z",
        "2026-09-01 00:00:00",
        "2026-09-01",
        "09-01-2026",
    ],
)
def test_date_filter_value_formats(api: Api, value: str) -> None:
    """ISO with offset, `yyyy-MM-dd HH:mm:ss`, `yyyy-MM-dd` and `MM-dd-yyyy` all mean the same
    instant (naive values are UTC)."""
    expected = _modified_after(api, datetime(2026, 9, 1, tzinfo=UTC))
    assert gsids(api, {"where": where(cond("ModifiedDate", "GTE", value))}) == expected
    assert 0 < len(expected) < 120


def test_date_btw_on_a_date_field(api: Api) -> None:
    lo, hi = datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)
    expected = [
        r["Gsid"] for r in truth(api) if to_epoch_ms(lo) <= r["RenewalDate"] <= to_epoch_ms(hi)
    ]
    body = {"where": where(cond("RenewalDate", "BTW", "12-01-2026", "2027-03-01"))}
    assert gsids(api, body) == expected
    assert expected


@pytest.mark.parametrize(
    ("field", "code"), [("ModifiedDate", "GSOBJ_1005"), ("RenewalDate", "GSOBJ_1006")]
)
@pytest.mark.parametrize("value", ["yesterday", "2026-13-45", "31/12/2026", True])
def test_garbage_date_values_are_400(api: Api, field: str, code: str, value: Any) -> None:
    reply = api.query("Company", {"select": ["Gsid"], "where": where(cond(field, "GT", value))})
    assert reply.status_code == 400
    body = reply.json()
    assert (body["result"], body["errorCode"]) == (False, code)
    assert field in body["errorDesc"]


def test_company_dates_are_epoch_ms_by_default_and_iso_when_switched(api: Api, fresh: None) -> None:
    select = {"select": ["Gsid", "RenewalDate", "ModifiedDate"], "limit": 3}
    epoch = api.records("Company", select)
    assert all(isinstance(r["ModifiedDate"], int) for r in epoch)
    api.sim.tenant.options.date_modes = {"company": "iso"}
    iso = api.records("Company", select)
    for e, i in zip(epoch, iso, strict=True):
        assert i["ModifiedDate"].endswith("Z")
        assert "T" in i["ModifiedDate"]
        assert len(i["RenewalDate"]) == 10  # DATE: yyyy-MM-dd
        when = datetime.fromisoformat(i["ModifiedDate"].replace("Z", "+00:00"))
        assert to_epoch_ms(when) == e["ModifiedDate"]


def test_cta_via_mda_uses_iso_dates_by_default(api: Api) -> None:
    rows = api.records("call_to_action", {"select": ["Gsid", "ModifiedDate"], "limit": 2})
    assert all(isinstance(r["ModifiedDate"], str) for r in rows)


def test_data_shape_switch_bare_list(api: Api, fresh: None) -> None:
    api.sim.tenant.options.data_shape = "list"
    body = api.query("Company", {"select": ["Gsid"], "limit": 2}).json()
    assert isinstance(body["data"], list)
    assert len(body["data"]) == 2
    api.sim.tenant.options.data_shape = "records"
    body = api.query("Company", {"select": ["Gsid"], "limit": 2}).json()
    assert isinstance(body["data"]["records"], list)


def test_empty_forms(api: Api, fresh: None) -> None:
    """200 + empty list (default), result:false "No data found", or 400 GSOBJ_1011."""
    nothing = {"select": ["Gsid"], "where": where(cond("Name", "EQ", "no such company"))}
    reply = api.query("Company", nothing)
    assert (reply.status_code, reply.json()["data"]) == (200, {"records": []})
    api.sim.tenant.options.empty_form = "result_false"
    body = api.query("Company", nothing).json()
    assert (body["result"], body["errorDesc"], body["data"]) == (
        False,
        "No data found for given criteria",
        None,
    )
    api.sim.tenant.options.empty_form = "gsobj_1011"
    reply = api.query("Company", {"select": ["Gsid"], "offset": 10_000})
    assert reply.status_code == 400
    assert reply.json()["errorCode"] == "GSOBJ_1011"
    reply = api.post("/v2/cockpit/cta/list", {"pageSize": 100, "pageNumber": 50})
    assert (reply.status_code, reply.json()["errorCode"]) == (400, "GSOBJ_1011")


def test_filtered_query_reflects_mutations_immediately(api: Api, fresh: None) -> None:
    """The key-list cache is invalidated by every change."""
    body = {"where": where(cond("Name", "CONTAINS", "renamed-company"))}
    assert gsids(api, body) == []
    key = api.sim.tenant.keys("Company")[7]
    api.sim.tenant.update("Company", key, {"Name": "Renamed-Company"})
    assert gsids(api, body) == [key]


def test_per_field_date_mode_overrides_the_object_mode(api: Api, fresh: None) -> None:
    """E.g. Company ModifiedDate as ISO (like Estuary sees it) while RenewalDate stays epoch."""
    api.sim.tenant.options.date_field_modes = {"company.modifieddate": "iso"}
    row = api.records("Company", {"select": ["RenewalDate", "ModifiedDate"], "limit": 1})[0]
    assert isinstance(row["RenewalDate"], int)
    assert isinstance(row["ModifiedDate"], str)
    assert row["ModifiedDate"].endswith("Z")
