"""Building change events for rule tests (shapes as spec.md "Events")."""

from __future__ import annotations

from typing import Any, cast

from watcher.core.events import CloudEvent


def event(
    change: str = "updated",
    *,
    source: str = "companies",
    key: str = "C1",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    time: str = "2026-11-23T16:00:00.000Z",
) -> CloudEvent:
    """A CloudEvent; ``changes`` is derived from ``before``/``after`` like the diff does."""
    if change == "created":
        before = None
    if change == "deleted":
        after = None
    b, a = before or {}, after or {}
    if change == "updated":
        changes = {
            f: {"old": b.get(f), "new": a.get(f)}
            for f in sorted(set(b) | set(a))
            if b.get(f) != a.get(f)
        }
    else:
        changes = {}
    return cast(
        CloudEvent,
        {
            "specversion": "1.0",
            "id": f"evt-{key}-{change}",
            "source": f"gainsight://acme.gainsightcloud.com/{source}",
            "type": f"gainsight.company.{change}",
            "subject": key,
            "time": time,
            "datacontenttype": "application/json",
            "data": {
                "source": source,
                "object": "Company",
                "key": key,
                "change": change,
                "changes": changes,
                "before": before,
                "after": after,
                "poll": {"id": "p1", "mode": "full"},
            },
        },
    )


def updated(field: str, old: Any, new: Any, **extra: Any) -> CloudEvent:
    base = {"Gsid": "C1", "Name": "Acme", **extra}
    return event("updated", before={**base, field: old}, after={**base, field: new})
