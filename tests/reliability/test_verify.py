"""The soak's verdict catches every kind of loss it claims to (so a pass means something)."""

from __future__ import annotations

import json
from typing import Any

from tests.reliability.verify import Verdict, check_deliveries, check_truth

IGN = ("ModifiedDate",)


def ev(seq: int, key: str, change: str, before: Any, after: Any) -> dict[str, Any]:
    return {
        "id": f"e{seq}",
        "sequence": seq,
        "type": f"gainsight.company.{change}",
        "data": {"source": "c", "key": key, "change": change, "before": before, "after": after},
    }


A1, A2, A3 = {"Gsid": "A", "Arr": 1.0}, {"Gsid": "A", "Arr": 2.0}, {"Gsid": "A", "Arr": 3.0}
B1 = {"Gsid": "B", "Arr": 5.0}


def truth(events: list[dict[str, Any]], *, stored: Any = None, deleted: Any = ()) -> Verdict:
    v = Verdict()
    final = {"A": A3}
    check_truth(
        v, "c", state0={"A": A1, "B": B1}, final=final,
        stored=final if stored is None else stored, events=events,
        deleted_in_log=set(deleted), ignored=IGN,
    )  # fmt: skip
    return v


def test_a_complete_history_passes() -> None:
    """A1 -> A2 -> A3 in two events, B deleted (and deleted in the tenant): no violation."""
    events = [ev(1, "A", "updated", A1, A2), ev(2, "A", "updated", A2, A3),
              ev(3, "B", "deleted", B1, None)]  # fmt: skip
    assert truth(events, deleted={"B"}).violations == []


def test_a_missing_event_is_reported() -> None:
    """B's delete never became an event: 'no event says so'."""
    v = truth([ev(1, "A", "updated", A1, A3)], deleted={"B"})
    assert any("B: changed in the tenant but no event" in m for m in v.violations)


def test_a_gap_between_events_is_a_lost_change() -> None:
    """A1 -> A2, then A3 -> A3': the change A2 -> A3 was never reported."""
    v = truth([ev(1, "A", "updated", A1, A2), ev(2, "A", "updated", A3, A3),
               ev(3, "B", "deleted", B1, None)], deleted={"B"})  # fmt: skip
    assert any("gap" in m for m in v.violations)


def test_a_delete_the_tenant_never_made_is_a_false_delete() -> None:
    v = truth([ev(1, "A", "updated", A1, A3), ev(2, "B", "deleted", B1, None)])
    assert any("false delete" in m for m in v.violations)


def test_a_store_that_differs_from_the_tenant_is_reported() -> None:
    events = [ev(1, "A", "updated", A1, A3), ev(2, "B", "deleted", B1, None)]
    v = truth(events, stored={"A": A2}, deleted={"B"})
    assert any("snapshot differs" in m for m in v.violations)


def body(e: dict[str, Any]) -> bytes:
    return json.dumps(e).encode()


def test_deliveries_repeats_with_the_same_body_are_allowed() -> None:
    e1, e2 = ev(1, "A", "updated", A1, A2), ev(2, "A", "updated", A2, A3)
    v = Verdict()
    received = [("e1", body(e1), 200), ("e1", body(e1), 200), ("e2", body(e2), 200)]
    check_deliveries(v, [e1, e2], [("e1", "delivered"), ("e2", "delivered")], received)
    assert v.violations == []
    assert (v.deliveries, v.unique_delivered, v.duplicates) == (3, 2, 1)


def test_an_event_never_received_or_still_pending_is_reported() -> None:
    e1, e2 = ev(1, "A", "updated", A1, A2), ev(2, "A", "updated", A2, A3)
    v = Verdict()
    check_deliveries(v, [e1, e2], [("e1", "delivered"), ("e2", "pending")], [("e1", body(e1), 200)])
    assert any("e2: never received" in m for m in v.violations)
    assert any("e2: delivery status ['pending']" in m for m in v.violations)


def test_a_repeat_with_another_body_or_out_of_order_delivery_is_reported() -> None:
    e1, e2 = ev(1, "A", "updated", A1, A2), ev(2, "A", "updated", A2, A3)
    v = Verdict()
    altered = body({**e1, "data": {**e1["data"], "after": A3}})
    received = [("e2", body(e2), 200), ("e1", body(e1), 200), ("e1", altered, 200)]
    check_deliveries(v, [e1, e2], [("e1", "delivered"), ("e2", "delivered")], received)
    assert any("delivered after a later one" in m for m in v.violations)
    assert any("different body" in m for m in v.violations)


def test_an_unknown_id_and_a_missing_queue_row_are_reported() -> None:
    e1 = ev(1, "A", "updated", A1, A2)
    v = Verdict()
    check_deliveries(v, [e1], [], [("zz", b"{}", 200), ("e1", body(e1), 500)])
    assert any("matches no stored event" in m for m in v.violations)
    assert any("no delivery was queued" in m for m in v.violations)
    assert any("never received" in m for m in v.violations)
