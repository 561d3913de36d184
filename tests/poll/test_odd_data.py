"""Odd but real tenant data never stops a source, floods, or lies (issue 14, issue 12 #7).

Each test reproduces one finding against the memory tenant: bad keys, keys read
twice, non-finite numbers, lone surrogates, values nested hundreds deep, an empty
sweep, a sweep that would delete every record, ``"" -> null``, ``date_fields``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.poll.helpers import Harness, company, source_config, tenant
from watcher.poll import MIN_HELD_DELETES
from watcher.poll.intake import MAX_WARNINGS
from watcher.store.store import event_text
from watcher.testing.memory import MemorySource


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"child": value}
    return value


async def test_a_record_without_a_key_is_skipped_and_the_rest_of_the_page_goes_on(
    tmp_path: Path,
) -> None:
    """A null key, an empty key and a key with a lone surrogate are each skipped and
    counted, with a warning naming the page and row; a real change on another record
    of the same page is reported."""
    feed = tenant(25)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    feed.records["1P02000012"]["Gsid"] = None  # page 2 (keys sort as strings; None first)
    feed.records["1P02000013"]["Gsid"] = ""
    feed.records["1P02000014"]["Gsid"] = "1P02\ud800"
    feed.records["1P02000015"]["Arr"] = 1.5
    with capture_logs() as logs:
        result = await h.poller.poll(src)
    assert result.outcome == "ok"
    assert result.skipped == 3
    assert result.updated == 1
    assert ("updated", "1P02000015") in h.changes()
    skipped = [e for e in logs if e["event"] == "poll.record_skipped"]
    assert len(skipped) == 3
    assert all(e["page"] >= 1 and e["row"] >= 0 and e["reason"] for e in skipped)
    assert {e["key"] for e in skipped} == {None, "", "1P02\ufffd"}
    # The three stored keys are not in the tenant any more (those rows now carry other
    # keys): confirmed absent by key, they are deleted; nothing else changed.
    assert result.deleted == 3
    assert sorted(h.changes()) == [
        ("deleted", "1P02000012"),
        ("deleted", "1P02000013"),
        ("deleted", "1P02000014"),
        ("updated", "1P02000015"),
    ]


async def test_a_key_seen_twice_across_pages_is_kept_once_without_contradicting_events(
    tmp_path: Path,
) -> None:
    """A tenant that returns one key on two pages with different values: one copy is
    kept, a warning names the key, and repeated sweeps emit nothing."""
    feed = tenant(20)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    twin = dict(company(3), Arr=123.0)
    feed.records["1P02000015x"] = twin  # sorts after 1P02000015: a later page
    with capture_logs() as logs:
        results = [await h.poller.poll(src) for _ in range(4)]
    assert h.events() == []
    assert dict(h.store.iter_snapshots("companies"))["1P02000003"]["Arr"] == 3000
    assert [(r.outcome, r.duplicates) for r in results] == [("ok", 1)] * 4
    assert any(
        e["event"] == "poll.duplicate_key" and e["sample_keys"] == ["1P02000003"] for e in logs
    )


async def test_a_key_twice_in_one_page_keeps_the_stored_copy_whatever_the_order(
    tmp_path: Path,
) -> None:
    """Within one page, the copy equal to the stored snapshot is kept: a tenant that
    sends the two copies in a new order each time changes nothing."""
    records = [company(i) for i in range(5)]
    twin = dict(company(2), Arr=7.0)
    pages = [[*records, twin], [twin, *records]]

    class Twice(MemorySource):
        async def iter_pages(self, source: Any, **_: Any) -> Any:
            from watcher.testing.memory import MemoryPage

            yield MemoryPage([dict(r) for r in pages[self.calls % 2]], 1)
            self.calls += 1

    h = Harness(tmp_path / "w.db", Twice(page_size=100))
    src = source_config(page_size=100)
    results = [await h.poller.poll(src) for _ in range(4)]
    assert h.events() == []
    assert [r.duplicates for r in results] == [1] * 4


async def test_non_finite_numbers_are_null_and_never_a_phantom_change(tmp_path: Path) -> None:
    """NaN, Infinity and 1e400 are stored as null; an update elsewhere in the record
    carries no NaN -> NaN change, and the event is strict JSON."""
    feed = tenant(3)
    feed.records["1P02000001"]["Score"] = math.nan
    feed.records["1P02000001"]["Mrr"] = json.loads("1e400")
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    snap = dict(h.store.iter_snapshots("companies"))["1P02000001"]
    assert snap["Score"] is None
    assert snap["Mrr"] is None
    feed.records["1P02000001"]["Arr"] = 5.5
    await h.poller.poll(src)
    (event,) = h.events()
    assert event["data"]["changes"] == {"Arr": {"old": 1000, "new": 5.5}}
    body = h.store.list_events()[0].body
    json.loads(body, parse_constant=lambda token: (_ for _ in ()).throw(ValueError(token)))
    assert "NaN" not in body
    assert "Infinity" not in body


def test_events_are_serialized_without_nan_tokens() -> None:
    """A NaN that reached an event anyway is written as null, or is an error when the
    event needs the stdlib's writer (an integer beyond 64 bits): never a bare token."""
    assert event_text({"data": {"x": math.nan, "y": math.inf}}) == '{"data":{"x":null,"y":null}}'
    with pytest.raises(ValueError, match="not JSON compliant"):
        event_text({"data": {"x": math.nan, "big": 2**70}})
    assert event_text({"data": {"big": 2**70, "s": "\ud800é"}}) == (
        '{"data":{"big":1180591620717411303424,"s":"\\ud800\\u00e9"}}'
    )
    assert event_text({"data": {"s": "é"}}) == '{"data":{"s":"é"}}'


async def test_poison_values_never_stop_a_source(tmp_path: Path) -> None:
    """A value nested 500 deep and text with a lone surrogate: the poll succeeds, the
    record is stored bounded and as valid text, and a later poll still works."""
    feed = tenant(5)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    feed.records["1P02000001"]["Payload"] = nested(500)
    feed.records["1P02000002"]["Name"] = "Acme \ud800 Corp"
    feed.records["1P02000003"]["Arr"] = 1.5
    result = await h.poller.poll(src)
    assert result.outcome == "ok"
    assert result.updated == 3
    names = {e["subject"]: e for e in h.events()}
    assert names["1P02000002"]["data"]["after"]["Name"] == "Acme \ufffd Corp"
    for stored in h.store.list_events():
        stored.body.encode("utf-8")  # valid text: no lone surrogate anywhere
    assert (await h.poller.poll(src)).outcome == "ok"
    assert len(h.events()) == 3


async def test_an_empty_sweep_of_a_small_source_is_held(tmp_path: Path) -> None:
    """A tenant answering "no data" to everything: a 5-record source (below the
    10-delete floor) is held, not wiped; nothing is deleted or re-created after."""
    feed = tenant(5)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    assert MIN_HELD_DELETES > 5
    saved = dict(feed.records)
    feed.records.clear()  # the outage: every read, by page or by key, finds nothing
    calls = feed.calls
    held = await h.poller.poll(src)
    assert held.outcome == "held"
    assert held.held == 5
    assert feed.calls == calls + 1  # no reads by key: the same tenant would answer the same
    assert h.store.count_snapshots("companies") == 5
    (event,) = h.events()
    assert event["type"] == "gainsight.watcher.delete_held"
    assert event["data"]["reason"] == "the sweep read no records"
    feed.records.update(saved)  # the outage ends
    back = await h.poller.poll(src)
    assert back.outcome == "ok"
    assert [c for c, _ in h.changes()] == ["delete_held"]


async def test_a_sweep_that_would_delete_every_record_is_held(tmp_path: Path) -> None:
    """All stored records gone, but the sweep read others: held whatever the floor;
    --allow-mass-delete applies it."""
    feed = tenant(4)
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    feed.records.clear()
    new = company(50)
    feed.records[new["Gsid"]] = new
    held = await h.poller.poll(src)
    assert held.outcome == "held"
    assert held.held == 4
    assert h.store.count_snapshots("companies") == 5
    assert h.events()[-1]["data"]["reason"] == "the sweep would delete every record of the source"
    applied = await h.poller.poll(src, allow_mass_delete=True)
    assert applied.deleted == 4


async def test_empty_string_to_null_is_not_a_change(tmp_path: Path) -> None:
    """Gainsight spells a cleared field "" or null: switching spelling emits nothing."""
    feed = tenant(3, page_size=10)
    feed.records["1P02000001"]["Stage"] = ""
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    feed.records["1P02000001"]["Stage"] = None
    result = await h.poller.poll(src)
    assert result.updated == 0
    assert result.touched == 1
    assert h.events() == []


async def test_date_fields_makes_epoch_numbers_dates_whatever_the_name(tmp_path: Path) -> None:
    """`Deadline` sent as epoch ms is a date when listed in date_fields; a later
    spelling as ISO text is no change."""
    feed = tenant(2)
    feed.records["1P02000001"]["Deadline"] = 1_764_547_200_000
    h = Harness(tmp_path / "w.db", feed)
    src = source_config(date_fields=("Deadline",))
    await h.poller.poll(src)
    snap = dict(h.store.iter_snapshots("companies", src.date_fields))["1P02000001"]
    assert snap["Deadline"] == "2025-12-01T00:00:00.000Z"
    feed.records["1P02000001"]["Deadline"] = "2025-12-01T00:00:00Z"
    feed.records["1P02000001"]["Arr"] = 2.5
    await h.poller.poll(src)
    (event,) = h.events()
    assert set(event["data"]["changes"]) == {"Arr"}


async def test_snapshots_keep_records_as_received_and_events_show_them_normalized(
    tmp_path: Path,
) -> None:
    """A snapshot is the record as received (the text its fingerprint hashes: epoch-ms
    dates stay numbers, a whole float stays a float), normalized only where it is
    compared or shown: an update's `before` and a `deleted` event's record carry ISO
    dates and whole numbers, and reading the same record back in another spelling is
    no change."""
    ms = 1_764_547_200_000
    feed = tenant(3)
    feed.records["1P02000001"]["ModifiedDate"] = ms
    feed.records["1P02000002"]["ModifiedDate"] = ms
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    (body,) = h.store.conn.execute("SELECT body FROM snapshots WHERE key = '1P02000001'").fetchone()
    assert json.loads(body) == feed.records["1P02000001"]
    assert '"ModifiedDate":1764547200000' in body
    assert '"Arr":1000.0' in body
    iso = "2025-12-01T00:00:00.000Z"
    assert dict(h.store.iter_snapshots("companies"))["1P02000001"]["ModifiedDate"] == iso
    feed.records["1P02000001"]["ModifiedDate"] = iso  # another spelling: no change
    feed.records["1P02000001"]["Arr"] = 1000  # (a whole float and its int are one value)
    feed.records["1P02000002"]["Stage"] = "Churned"
    del feed.records["1P02000000"]
    await h.poller.poll(src)
    updated, deleted = sorted(h.events(), key=lambda e: e["data"]["change"], reverse=True)
    assert (updated["subject"], set(updated["data"]["changes"])) == ("1P02000002", {"Stage"})
    assert updated["data"]["before"]["ModifiedDate"] == iso
    assert (deleted["subject"], deleted["data"]["change"]) == ("1P02000000", "deleted")
    assert deleted["data"]["before"]["Arr"] == 0
    assert type(deleted["data"]["before"]["Arr"]) is int
    (body,) = h.store.conn.execute("SELECT body FROM snapshots WHERE key = '1P02000001'").fetchone()
    assert json.loads(body)["ModifiedDate"] == iso  # the new spelling, refreshed silently


async def test_date_fields_when_set_decide_alone(tmp_path: Path) -> None:
    """With `date_fields` set, a date-like name it does not list keeps its number (a count
    stored in `RenewalDate`); without it, the name rule makes that number a date."""
    ms = 1_764_547_200_000
    feed = tenant(2)
    feed.records["1P02000001"]["RenewalDate"] = ms
    feed.records["1P02000001"]["Deadline"] = ms
    h = Harness(tmp_path / "w.db", feed)
    await h.poller.poll(source_config(date_fields=("Deadline",)))
    snap = dict(h.store.iter_snapshots("companies", ("Deadline",)))["1P02000001"]
    assert snap["RenewalDate"] == ms
    assert snap["Deadline"] == "2025-12-01T00:00:00.000Z"
    other = Harness(tmp_path / "x.db", feed)
    await other.poller.poll(source_config())
    snap = dict(other.store.iter_snapshots("companies"))["1P02000001"]
    assert snap["RenewalDate"] == "2025-12-01T00:00:00.000Z"
    assert snap["Deadline"] == ms


async def test_adding_a_date_field_later_is_not_a_change(tmp_path: Path) -> None:
    """Snapshots stored before `Deadline` was listed compare under today's rules."""
    feed = tenant(2)
    feed.records["1P02000001"]["Deadline"] = 1_764_547_200_000
    h = Harness(tmp_path / "w.db", feed)
    await h.poller.poll(source_config())
    feed.records["1P02000001"]["Arr"] = 2.5
    await h.poller.poll(source_config(date_fields=("Deadline",)))
    (event,) = h.events()
    assert set(event["data"]["changes"]) == {"Arr"}
    assert event["data"]["after"]["Deadline"] == "2025-12-01T00:00:00.000Z"


async def test_a_snapshot_stored_with_nan_by_an_older_version_gives_no_phantom_change(
    tmp_path: Path,
) -> None:
    """A body written with a bare NaN token before this fix reads back as NaN; the stored
    record is normalized again before comparing, so only the real change is reported."""
    feed = tenant(2)
    feed.records["1P02000001"]["Score"] = math.nan
    h = Harness(tmp_path / "w.db", feed)
    src = source_config()
    await h.poller.poll(src)
    h.store.conn.execute(
        "UPDATE snapshots SET body = replace(body, '\"Score\":null', '\"Score\":NaN') "
        "WHERE key = '1P02000001'"
    )
    assert math.isnan(h.store.records("companies", ["1P02000001"])["1P02000001"]["Score"])
    feed.records["1P02000001"]["Arr"] = 5.5
    await h.poller.poll(src)
    (event,) = h.events()
    assert set(event["data"]["changes"]) == {"Arr"}
    assert event["data"]["before"]["Score"] is None


async def test_many_bad_records_are_all_counted_but_the_log_stays_bounded(
    tmp_path: Path,
) -> None:
    """30 records without a key on one page: 30 skipped, at most MAX_WARNINGS lines."""
    feed = tenant(40, page_size=50)
    for i in range(30):
        feed.records[f"1P02{i:06d}"]["Gsid"] = None
    h = Harness(tmp_path / "w.db", feed)
    with capture_logs() as logs:
        result = await h.poller.poll(source_config(page_size=50))
    assert result.outcome == "ok"
    assert (result.skipped, result.created) == (30, 10)
    assert len([e for e in logs if e["event"] == "poll.record_skipped"]) == MAX_WARNINGS


async def test_an_integer_beyond_64_bits_reads_the_same_every_time(tmp_path: Path) -> None:
    """A reply's 30-digit integer is read as that exact integer (as the stdlib reads it,
    and reads it back from the store), the same on every read; a record holding the
    nearest float instead is stored and compared as that float: no phantom change
    either way."""
    from watcher.gainsight.envelope import parse_json

    reply = b'{"data":{"records":[{"Gsid":"1P02000001","Big":123456789012345678901234567890}]}}'
    first, second = parse_json(reply), parse_json(reply)
    assert first == second
    assert first["data"]["records"][0]["Big"] == 123456789012345678901234567890
    feed = tenant(3)
    feed.records["1P02000001"]["Big"] = first["data"]["records"][0]["Big"]
    feed.records["1P02000002"]["Big"] = 1.2345678901234568e29
    h = Harness(tmp_path / "w.db", feed)
    src = source_config(select=("Gsid", "Name", "Arr", "Stage", "ModifiedDate", "Big"))
    await h.poller.poll(src)
    again = await h.poller.poll(src)
    assert (again.updated, again.touched) == (0, 0)
    assert h.changes() == []
    stored = dict(h.store.iter_snapshots("companies"))
    assert stored["1P02000001"]["Big"] == 123456789012345678901234567890
