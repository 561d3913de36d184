"""The soak's verdict, as pure functions over what was gathered (no I/O, no clock).

Three records of the same history are compared:

- the tenant's ground truth: its state when the baseline was taken, its final state,
  and its change log (which keys were deleted);
- the events in the store (CloudEvents, in ``sequence`` order);
- the receiver's log (every request, with its ``webhook-id`` and body, in arrival
  order) and the outbox rows.

Violations are plain sentences; an empty list is a pass.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from watcher.core.diff import field_changes

Record = Mapping[str, Any]


@dataclass
class Verdict:
    violations: list[str] = field(default_factory=list)
    changed_keys: int = 0  # keys with a net change in the tenant
    events: int = 0
    deliveries: int = 0  # requests answered 2xx at the receiver
    unique_delivered: int = 0
    duplicates: int = 0  # repeats of an id already received (same body)
    by_type: dict[str, int] = field(default_factory=dict)

    def fail(self, message: str, limit: int = 50) -> None:
        if len(self.violations) < limit:
            self.violations.append(message)


def visible(a: Record | None, b: Record | None, ignored: Sequence[str]) -> bool:
    """True when ``a`` and ``b`` differ in existence or in a field not ignored."""
    if a is None or b is None:
        return (a is None) != (b is None)
    return bool(field_changes(a, b, tuple(ignored)))


def check_truth(
    verdict: Verdict,
    source: str,
    *,
    state0: Mapping[str, Record],
    final: Mapping[str, Record],
    stored: Mapping[str, Record],
    events: Sequence[Mapping[str, Any]],
    deleted_in_log: set[str],
    ignored: Sequence[str],
) -> None:
    """Events of ``source``, composed per key, equal the net change state0 -> final;
    the store ends equal to the tenant; no delete without a delete in the tenant."""
    composed: dict[str, tuple[Any, Any]] = {}
    for event in events:
        data = event["data"]
        if data.get("source") != source or data.get("change") not in (
            "created",
            "updated",
            "deleted",
        ):
            continue
        key = data["key"]
        if data["change"] == "deleted" and key not in deleted_in_log:
            verdict.fail(f"{source}:{key}: false delete (the tenant never deleted it)")
        if key in composed:
            if visible(composed[key][1], data["before"], ignored):
                verdict.fail(f"{source}:{key}: gap between consecutive events (a lost change)")
            composed[key] = (composed[key][0], data["after"])
        else:
            composed[key] = (data["before"], data["after"])
    true_net = {
        k for k in state0.keys() | final.keys() if visible(state0.get(k), final.get(k), ignored)
    }
    verdict.changed_keys += len(true_net)
    ours = {k for k, (b, a) in composed.items() if visible(b, a, ignored)}
    for key in sorted(true_net - ours):
        verdict.fail(f"{source}:{key}: changed in the tenant but no event says so")
    for key in sorted(ours - true_net):
        verdict.fail(f"{source}:{key}: events report a change the tenant does not have")
    for key in sorted(true_net & ours):
        before, after = composed[key]
        if visible(before, state0.get(key), ignored):
            verdict.fail(f"{source}:{key}: first event's 'before' is not the baseline state")
        if visible(after, final.get(key), ignored):
            verdict.fail(f"{source}:{key}: last event's 'after' is not the final state")
    for key in sorted(stored.keys() | final.keys()):
        if visible(stored.get(key), final.get(key), ignored):
            verdict.fail(f"{source}:{key}: the store's snapshot differs from the tenant")


def check_deliveries(
    verdict: Verdict,
    events: Sequence[Mapping[str, Any]],
    outbox: Iterable[tuple[str, str]],
    received: Sequence[tuple[str, bytes, int]],
) -> None:
    """Every change event reached the receiver; repeats carry the same id and body;
    per record key, first receipts arrive in event order.

    ``outbox``: (event_id, status); ``received``: (webhook-id, body, HTTP status) in
    arrival order.
    """
    by_id = {e["id"]: e for e in events}
    change_ids = [
        e["id"] for e in events if e["data"].get("change") in ("created", "updated", "deleted")
    ]
    verdict.events = len(change_ids)
    verdict.by_type = dict(Counter(e["type"] for e in events))
    status: dict[str, set[str]] = {}
    for event_id, state in outbox:
        status.setdefault(event_id, set()).add(state)
    first_body: dict[str, bytes] = {}
    last_seq: dict[str, int] = {}
    for hook_id, body, code in received:
        if not 200 <= code < 300:
            continue
        verdict.deliveries += 1
        if hook_id not in by_id:
            verdict.fail(f"delivery {hook_id!r} matches no stored event")
            continue
        try:
            parsed = json.loads(body)
        except ValueError:
            verdict.fail(f"delivery {hook_id!r}: the body is not JSON")
            continue
        if hook_id in first_body:
            verdict.duplicates += 1
            if parsed != json.loads(first_body[hook_id]):
                verdict.fail(f"delivery {hook_id}: a repeat with a different body")
            continue
        first_body[hook_id] = body
        event = by_id[hook_id]
        order_key = f"{event['data']['source']}:{event['data']['key']}"
        seq = int(event["sequence"])
        if seq < last_seq.get(order_key, 0):
            verdict.fail(f"{order_key}: event {seq} delivered after a later one")
        last_seq[order_key] = max(seq, last_seq.get(order_key, 0))
    verdict.unique_delivered = len(first_body)
    for event_id in change_ids:
        if event_id not in status:
            verdict.fail(f"event {event_id}: no delivery was queued")
        elif status[event_id] != {"delivered"}:
            verdict.fail(f"event {event_id}: delivery status {sorted(status[event_id])}")
        if event_id not in first_body:
            verdict.fail(f"event {event_id}: never received")
