"""CloudEvents 1.0 change events (pure): shapes exactly as spec.md "Events".

The event id is a UUID version 7 (time-ordered); its time and randomness are
passed in, so building an event has no clock and no global state. The
``sequence`` attribute is assigned by the store when the event is committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

from watcher.core.diff import Change
from watcher.dates import format_utc, to_epoch_ms

SPECVERSION = "1.0"


class CloudEvent(TypedDict):
    """A change event as stored and delivered (CloudEvents 1.0, structured JSON).

    ``sequence`` is set by the store when the event is committed; ``data`` is the
    change (``source``, ``key``, ``change``, ``changes``, ``before``, ``after``, ``poll``)
    or, for a delete-held event, the hold.
    """

    specversion: str
    id: str
    source: str
    type: str
    subject: str
    time: str
    datacontenttype: str
    data: dict[str, Any]
    sequence: NotRequired[int]


DELETE_HELD_TYPE = "gainsight.watcher.delete_held"


def uuid7(when: datetime, random_bits: int) -> str:
    """A UUIDv7 string: 48-bit Unix ms, version 7, 74 bits of ``random_bits``, variant 10."""
    ms = to_epoch_ms(when) & ((1 << 48) - 1)
    rand_a = (random_bits >> 62) & 0xFFF
    rand_b = random_bits & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def event_source(host: str, source_name: str) -> str:
    """``gainsight://<host>/<source name>``."""
    return f"gainsight://{host}/{source_name}"


def change_event(
    change: Change,
    *,
    event_id: str,
    time: datetime,
    host: str,
    source_name: str,
    object_name: str,
    event_kind: str,
    poll_id: str,
    poll_mode: str,
) -> CloudEvent:
    """The CloudEvent for one :class:`~watcher.core.diff.Change` (without ``sequence``)."""
    return {
        "specversion": SPECVERSION,
        "id": event_id,
        "source": event_source(host, source_name),
        "type": f"gainsight.{event_kind}.{change.change}",
        "subject": change.key,
        "time": format_utc(time),
        "datacontenttype": "application/json",
        "data": {
            "source": source_name,
            "object": object_name,
            "key": change.key,
            "change": change.change,
            "changes": {name: fc.as_dict() for name, fc in change.changes.items()},
            "before": change.before,
            "after": change.after,
            "poll": {"id": poll_id, "mode": poll_mode},
        },
    }


def delete_held_event(
    *,
    event_id: str,
    time: datetime,
    host: str,
    source_name: str,
    object_name: str,
    poll_id: str,
    poll_mode: str,
    held: int,
    total: int,
    max_delete_fraction: float,
    sample_keys: list[str],
    reason: str = "the deletes exceed max_delete_fraction",
) -> CloudEvent:
    """One event saying a sweep's deletes were held instead of applied, and why."""
    fraction = held / total if total else 1.0
    return {
        "specversion": SPECVERSION,
        "id": event_id,
        "source": event_source(host, source_name),
        "type": DELETE_HELD_TYPE,
        "subject": source_name,
        "time": format_utc(time),
        "datacontenttype": "application/json",
        "data": {
            "source": source_name,
            "object": object_name,
            "change": "delete_held",
            "held": held,
            "total": total,
            "fraction": round(fraction, 6),
            "max_delete_fraction": max_delete_fraction,
            "sample_keys": sample_keys,
            "reason": reason,
            "apply_with": f"watcher poll {source_name} --full --allow-mass-delete",
            "poll": {"id": poll_id, "mode": poll_mode},
        },
    }


def order_key(event: Mapping[str, Any], source: str | None = None) -> str:
    """``"<source>:<key>"``: for one sink, deliveries with the same key keep event order.

    The one definition, used when a poll's commit (which knows ``source``) and
    ``watcher replay`` (which reads it from ``data.source``) queue deliveries. A
    delete-held event, which has no key, uses its subject: the source name.
    """
    data = event.get("data")
    data = data if isinstance(data, Mapping) else {}
    name = data.get("source") if source is None else source
    return f"{name}:{data.get('key', event.get('subject'))}"


def with_sequence(event: Mapping[str, Any], sequence: int) -> CloudEvent:
    """The event as delivered: ``sequence`` placed after ``datacontenttype``."""
    out: dict[str, Any] = {}
    for name, value in event.items():
        if name == "data":
            out["sequence"] = sequence
        out[name] = value
    if "sequence" not in out:
        out["sequence"] = sequence
    return cast(CloudEvent, out)
