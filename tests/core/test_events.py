"""CloudEvents built for changes: exactly the spec's shape."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from cloudevents.core.formats.json import JSONFormat

from watcher.core.diff import Change, FieldChange
from watcher.core.events import change_event, delete_held_event, uuid7, with_sequence

NOW = datetime(2026, 11, 23, 16, 0, 0, 123000, tzinfo=UTC)


def test_uuid7_is_version_7_and_time_ordered() -> None:
    """Ids are RFC 9562 version-7 UUIDs whose order follows time."""
    a = uuid7(NOW, 2**74 - 1)
    b = uuid7(datetime(2026, 11, 23, 16, 0, 1, tzinfo=UTC), 0)
    assert uuid.UUID(a).version == 7
    assert uuid.UUID(a).variant == uuid.RFC_4122
    assert a < b


def test_updated_event_matches_the_spec() -> None:
    """type gainsight.<kind>.<change>, source gainsight://host/name, data with changes/poll."""
    change = Change(
        "updated",
        "1P02ZU",
        {"Gsid": "1P02ZU", "Arr": 100000.5},
        {"Gsid": "1P02ZU", "Arr": 90000.5},
        {"Arr": FieldChange(100000.5, 90000.5)},
    )
    event = change_event(
        change,
        event_id="0193f5c2-7c1e-7d2a-9c4e-3f1b2a6d8e10",
        time=NOW,
        host="acme.gainsightcloud.com",
        source_name="companies",
        object_name="Company",
        event_kind="company",
        poll_id="p1",
        poll_mode="full",
    )
    full = with_sequence(event, 1234)
    assert list(full) == [
        "specversion", "id", "source", "type", "subject", "time", "datacontenttype",
        "sequence", "data",
    ]  # fmt: skip
    assert full["source"] == "gainsight://acme.gainsightcloud.com/companies"
    assert full["type"] == "gainsight.company.updated"
    assert full["subject"] == "1P02ZU"
    assert full["time"] == "2026-11-23T16:00:00.123Z"
    assert full["sequence"] == 1234
    assert full["data"] == {
        "source": "companies",
        "object": "Company",
        "key": "1P02ZU",
        "change": "updated",
        "changes": {"Arr": {"old": 100000.5, "new": 90000.5}},
        "before": {"Gsid": "1P02ZU", "Arr": 100000.5},
        "after": {"Gsid": "1P02ZU", "Arr": 90000.5},
        "poll": {"id": "p1", "mode": "full"},
    }
    # The official SDK reads it as a valid CloudEvents 1.0 event.
    parsed = JSONFormat().read(None, json.dumps(full))
    assert parsed.get_specversion() == "1.0"
    assert parsed.get_type() == "gainsight.company.updated"
    assert parsed.get_extension("sequence") == 1234


def test_delete_held_event() -> None:
    """One gainsight.watcher.delete_held event says what was held and how to apply it."""
    event = delete_held_event(
        event_id="x",
        time=NOW,
        host="h",
        source_name="companies",
        object_name="Company",
        poll_id="p",
        poll_mode="full",
        held=50,
        total=100,
        max_delete_fraction=0.2,
        sample_keys=["A"],
    )
    assert event["type"] == "gainsight.watcher.delete_held"
    assert event["data"]["fraction"] == 0.5
    assert event["data"]["apply_with"] == "watcher poll companies --full --allow-mass-delete"
