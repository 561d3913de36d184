"""Upgrading over an older fingerprint scheme: stored fingerprints that no longer match
(an older version hashed the *normalized* record; this one hashes it as received) fall
through to the normalized comparison, which finds nothing changed: no event, each
snapshot refreshed silently with the new fingerprint, and the sweep after that compares
by fingerprint alone."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.poll.helpers import Harness, company, source_config, tenant
from watcher.config import SourceConfig
from watcher.core.normalize import fingerprint, normalize_record
from watcher.gainsight.rows import read_page
from watcher.testing.memory import MemorySource

RENEWAL_MS = 1_790_000_000_000  # an epoch-ms date as the tenant sends it


def _tenant(n: int) -> MemorySource:
    records = {}
    for i in range(n):
        record = company(i, RenewalDate=RENEWAL_MS + i * 86_400_000, Arr=1000.0 * i + 0.0)
        records[record["Gsid"]] = record
    return MemorySource(records, page_size=10)


def _stored_fps(h: Harness) -> dict[str, int]:
    rows = h.store.conn.execute("SELECT key, fp FROM snapshots WHERE source = 'companies'")
    return dict(rows.fetchall())


async def test_a_sweep_after_a_fingerprint_scheme_change_refreshes_silently(
    tmp_path: Path,
) -> None:
    source = source_config(select=("Gsid", "Name", "Arr", "Stage", "ModifiedDate", "RenewalDate"))
    h = Harness(tmp_path / "watcher.db", _tenant(30))
    await h.poller.poll(source, "full")  # baseline
    # What an older version stored: the fingerprint of the normalized record.
    with h.store.conn:
        for key, body in h.store.conn.execute(
            "SELECT key, body FROM snapshots WHERE source = 'companies'"
        ).fetchall():
            old = fingerprint(normalize_record(json.loads(body)))
            h.store.conn.execute(
                "UPDATE snapshots SET fp = ? WHERE source = 'companies' AND key = ?", (old, key)
            )
        # An older store has no sweep page rows its sweeps could trust (schema 9 drops them).
        h.store.conn.execute("DELETE FROM sweep_pages")
    raw = {k: fingerprint(r) for k, r in h.feed.records.items()}
    assert all(raw[k] != fp for k, fp in _stored_fps(h).items())  # every one mismatches

    upgraded = await h.poller.poll(source, "full")

    assert (upgraded.created, upgraded.updated, upgraded.deleted) == (0, 0, 0)
    assert h.changes() == []
    assert _stored_fps(h) == raw  # the new scheme's fingerprints are stored

    steady = await h.poller.poll(source, "full")
    assert (steady.created, steady.updated, steady.touched) == (0, 0, 0)
    assert h.changes() == []


async def test_a_date_format_change_of_the_tenant_is_no_event(tmp_path: Path) -> None:
    """Epoch ms today, ISO text tomorrow: the raw fingerprint changes, the values do not."""
    source = source_config(select=("Gsid", "Name", "Arr", "Stage", "ModifiedDate", "RenewalDate"))
    h = Harness(tmp_path / "watcher.db", _tenant(12))
    await h.poller.poll(source, "full")
    for record in h.feed.records.values():
        ms = record["RenewalDate"]
        record["RenewalDate"] = normalize_record({"RenewalDate": ms})["RenewalDate"]
        assert isinstance(record["RenewalDate"], str)
    changed = await h.poller.poll(source, "full")
    assert (changed.created, changed.updated) == (0, 0)
    assert h.changes() == []
    assert _stored_fps(h) == {k: fingerprint(r) for k, r in h.feed.records.items()}


async def test_the_stored_fingerprints_of_a_page_are_read_in_one_query(tmp_path: Path) -> None:
    source = source_config(page_size=2000)
    feed = tenant(4000, page_size=2000)  # pages larger than SQLite's parameter chunks
    feed.digests = False  # no page settled by its reply: each window is read
    h = Harness(tmp_path / "watcher.db", feed)
    await h.poller.poll(source, "full")
    reads: list[str] = []
    h.store.conn.set_trace_callback(reads.append)
    try:
        result = await h.poller.poll(source, "full")
    finally:
        h.store.conn.set_trace_callback(None)
    assert result.pages == 3  # two full pages and the empty one that ends paging
    # A page of a sweep in key order: its window's fingerprints, in one statement.
    reads_of = ("SELECT fp FROM snapshots", "SELECT key, fp FROM snapshots")
    lookups = [s for s in reads if s.startswith(reads_of)]
    assert len(lookups) == 2


class SpelledSource(MemorySource):
    """A tenant whose replies change their JSON spelling (spaces, escapes) at will."""

    spaced = False

    def _as_sent(self, page: list[dict[str, Any]], source: SourceConfig) -> Sequence[Any]:
        if not self.spaced:
            return super()._as_sent(page, source)
        content = json.dumps({"result": True, "data": {"records": page}}, indent=1).encode()
        read = read_page(content, source.key, source.modified_field)
        assert read is not None
        return read[0]


async def test_a_new_json_spelling_of_the_same_records_is_no_event(tmp_path: Path) -> None:
    """Records are fingerprinted as the bytes sent: another spelling of the same values
    (a server that starts to indent, or to escape non-ASCII text) changes every
    fingerprint and no value. No event; the snapshots are refreshed once, silently."""
    source = source_config(select=("Gsid", "Name", "Arr", "Stage", "ModifiedDate", "RenewalDate"))
    # (No page digests: a reply's digest is of its bytes, so a new spelling changes it.)
    feed = SpelledSource(dict(_tenant(25).records), page_size=10, digests=False)
    feed.records["1P02000003"]["Name"] = "Zoë Ltd"
    h = Harness(tmp_path / "watcher.db", feed)
    await h.poller.poll(source, "full")
    assert _stored_fps(h) == {k: fingerprint(r) for k, r in feed.records.items()}

    feed.spaced = True
    respelled = await h.poller.poll(source, "full")
    assert (respelled.created, respelled.updated, respelled.deleted) == (0, 0, 0)
    assert h.changes() == []
    refreshed = _stored_fps(h)  # the new spelling's fingerprints, stored
    assert all(fp != fingerprint(feed.records[k]) for k, fp in refreshed.items())

    steady = await h.poller.poll(source, "full")
    assert (steady.updated, steady.touched) == (0, 0)
    assert _stored_fps(h) == refreshed

    feed.records["1P02000003"]["Arr"] = 1.5
    changed = await h.poller.poll(source, "full")
    assert (changed.updated, changed.touched) == (1, 0)
    assert h.changes() == [("updated", "1P02000003")]


async def test_an_integer_beyond_64_bits_is_no_change_when_another_field_changes(
    tmp_path: Path,
) -> None:
    """The record read as received, stored as received and read back: its huge integer
    is the same exact integer each time, so an update names only the field that moved."""
    source = source_config(select=("Gsid", "Name", "Arr", "Stage", "ModifiedDate"))
    # Epoch-ms dates: the usual page, whose silent baseline stores the JSON as received.
    records = {r["Gsid"]: r for r in (company(i, ModifiedDate=RENEWAL_MS) for i in range(3))}
    records["1P02000001"]["Arr"] = 2**70 + 1
    feed = SpelledSource(records, page_size=10, digests=False)
    feed.spaced = True  # (orjson cannot write the integer: the stdlib writes the reply)
    h = Harness(tmp_path / "watcher.db", feed)
    await h.poller.poll(source, "full")
    feed.records["1P02000001"]["Name"] = "Renamed"
    changed = await h.poller.poll(source, "full")
    assert changed.updated == 1
    [event] = h.events()
    assert set(event["data"]["changes"]) == {"Name"}
