"""Property-based fuzzing of what Gainsight sends back.

1. Random replies (status codes, headers, JSON bodies of every shape, raw bytes),
   served to the real :class:`GainsightClient` through ``httpx.MockTransport``:
   every call returns clean records or raises a ``SourceError`` subclass - never
   an httpx/json/Key/Type error, never a traceback.
2. Random record *content* (unicode, lone surrogates, huge numbers, NaN/Infinity,
   nested lists and objects, any date spelling) through the real poll engine into
   a real SQLite file, with the server failing at a random page: the store stays
   intact (``PRAGMA integrity_check`` is ``ok``), pages commit whole or not at all
   (no partial page), events match exactly the committed changes, a failed sweep
   deletes nothing, and polling unchanged data again emits nothing.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.clock import FakeClock
from watcher.config import SourceConfig
from watcher.errors import PollError, SourceError
from watcher.gainsight import Budget, GainsightClient
from watcher.poll import Poller
from watcher.store import Store

BASE = "https://acme.gainsightcloud.com"
COMPANIES = SourceConfig(
    name="companies",
    kind="company",
    select=("Gsid", "Name", "Arr", "Stage", "Tags", "Rev", "ModifiedDate"),
    ignore_fields=("ModifiedDate",),
    page_size=3,
)
CTAS = SourceConfig(name="ctas", kind="cta", select=("Gsid", "Name", "DueDate"), page_size=3)

# -- strategies -------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=15),
    st.sampled_from(
        ["2026-11-23", "2026-11-23T16:00:00Z", "2026-11-23T16:00:00.123+05:30", "13-45-2026",
         "1P02ABC", "\ud800", "\x00", "null", "", "1e309"]
    ),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
record_fields = st.dictionaries(
    st.sampled_from(["Gsid", "Name", "Arr", "Stage", "Tags", "ModifiedDate", "DueDate", "x"]),
    json_values,
    max_size=6,
)
# Record content for the store property: any value, lone UTF-16 surrogates included.
content_fields = st.dictionaries(
    st.sampled_from(["Name", "Arr", "Stage", "Tags", "ModifiedDate", "x"]), json_values, max_size=5
)
data_shapes = st.one_of(
    json_values,
    st.lists(record_fields, max_size=4),
    st.fixed_dictionaries({"records": st.lists(record_fields, max_size=4) | json_values}),
)
envelopes = st.fixed_dictionaries(
    {"result": st.booleans() | json_scalars},
    optional={
        "data": data_shapes,
        "errorCode": json_scalars,
        "errorDesc": json_scalars,
        "requestId": json_scalars,
        "message": json_scalars,
    },
)
bodies = st.one_of(
    envelopes.map(lambda e: json.dumps(e, allow_nan=True).encode()),
    json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    envelopes.map(lambda e: json.dumps(e, allow_nan=True).encode()).flatmap(
        lambda b: st.integers(0, len(b)).map(lambda n: b[:n])  # truncated
    ),
    st.binary(max_size=60),
)
statuses = st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 408, 429, 500, 502])
headers = st.dictionaries(
    st.sampled_from(["Retry-After", "Content-Type", "x-gs-request-id", "Content-Encoding"]),
    st.sampled_from(["0", "1", "-5", "soon", "99999999", "application/json", "gzip", "r-1"]),
    max_size=2,
)
replies = st.tuples(statuses, headers, bodies)


def _client(http: httpx.AsyncClient, clock: FakeClock) -> GainsightClient:
    return GainsightClient(
        http,
        base_url=BASE,
        access_key="fuzz-key-0123",
        budget=Budget(100_000, 10_000_000, clock),
        clock=clock,
        max_retries=2,
        rng=random.Random(1),
    )


async def _call(client: GainsightClient, call: str) -> list[dict[str, Any]]:
    if call == "pages":
        out: list[dict[str, Any]] = []
        async for page in client.iter_pages(COMPANIES):
            out.extend(page.records)
            if len(out) > 50:
                break
        return out
    if call == "cta-pages":
        return await client.read_all(CTAS)
    if call == "keys":
        return await client.fetch_by_keys(COMPANIES, ["1P02A", "1P02B"])
    if call == "deleted":
        since = datetime(2026, 1, 1, tzinfo=UTC)
        return [{"key": d.key} for d in await client.deleted_since(COMPANIES, since)]
    since = datetime(2026, 1, 1, tzinfo=UTC)
    return [{"key": d.key} for d in await client.deleted_since(CTAS, since)]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(replies, min_size=1, max_size=6),
    st.sampled_from(["pages", "cta-pages", "keys", "deleted", "cta-deleted"]),
)
def test_random_replies_give_records_or_a_source_error(
    script: list[tuple[int, dict[str, str], bytes]], call: str
) -> None:
    """Any sequence of replies ends in clean records or a SourceError subclass."""

    def handler(request: httpx.Request) -> httpx.Response:
        status, hdrs, body = script[min(handler.calls, len(script) - 1)]  # type: ignore[attr-defined]
        handler.calls += 1  # type: ignore[attr-defined]
        return httpx.Response(status, content=body, headers=hdrs)

    handler.calls = 0  # type: ignore[attr-defined]

    async def go() -> None:
        clock = FakeClock()
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            try:
                records = await _call(_client(http, clock), call)
            except SourceError as exc:
                text = str(exc)
                assert text, "an error without a message"
                assert "fuzz-key-0123" not in text
                return
        assert isinstance(records, list)
        assert all(isinstance(r, dict) for r in records)

    asyncio.run(go())


# -- random content through the poll engine into a real store ---------------------


def _company(i: int, rev: int, extra: dict[str, Any]) -> dict[str, Any]:
    record = {k: v for k, v in extra.items() if k not in ("Gsid", "Rev")}
    record["Gsid"] = f"1P02{i:05d}"
    record["Rev"] = rev
    return record


class Tenant:
    """A tiny MDA server over a list of records, with a fault from request ``fail_at`` on."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.requests = 0
        self.fail_at: int | None = None
        self.fault = "500"

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.fail_at is not None and self.requests >= self.fail_at:
            if self.fault == "500":
                return httpx.Response(500, content=b'{"result": false, "errorCode": "GU_1101"}')
            if self.fault == "truncated":
                return httpx.Response(200, content=b'{"result": true, "data": {"records": [{"G')
            return httpx.Response(200, content=b'{"result": false, "errorCode": "GSOBJ_1002"}')
        body = json.loads(request.content)
        rows = self.records
        for cond in (body.get("where") or {}).get("conditions", []):
            if cond.get("operator") == "IN":
                wanted = set(cond["value"])
                rows = [r for r in rows if r["Gsid"] in wanted]
        rows = sorted(rows, key=lambda r: r["Gsid"])
        page = rows[body["offset"] : body["offset"] + body["limit"]]
        reply = {"result": True, "requestId": "r", "data": {"records": page}}
        return httpx.Response(200, content=json.dumps(reply, allow_nan=True).encode())


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.lists(content_fields, min_size=1, max_size=10),
    second=st.lists(content_fields, min_size=1, max_size=10),
    fail_at=st.none() | st.integers(min_value=1, max_value=5),
    fault=st.sampled_from(["500", "truncated", "result_false"]),
)
def test_random_content_never_corrupts_the_store_nor_splits_a_page(
    first: list[dict[str, Any]],
    second: list[dict[str, Any]],
    fail_at: int | None,
    fault: str,
) -> None:
    """Random record content and a failure at a random page: whole pages or nothing."""
    asyncio.run(_content_case(first, second, fail_at, fault))


async def _content_case(
    first: list[dict[str, Any]],
    second: list[dict[str, Any]],
    fail_at: int | None,
    fault: str,
) -> None:
    clock = FakeClock()
    v1 = [_company(i, 1, r) for i, r in enumerate(first)]
    v2 = [_company(i, 2, r) for i, r in enumerate(second)]
    tenant = Tenant(v1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.db"
        async with httpx.AsyncClient(transport=httpx.MockTransport(tenant.handler)) as http:
            client = _client(http, clock)
            store = Store.open(path, clock=clock)
            poller = Poller(store, client, host="acme", clock=clock)
            try:
                await poller.poll(COMPANIES)  # silent baseline
                assert store.list_events() == []
                await poller.poll(COMPANIES)  # the same data again: nothing to report
                assert store.list_events() == [], "unchanged random content emitted events"
                baseline = dict(store.iter_snapshots("companies"))
                assert {r["Rev"] for r in baseline.values()} == {1}

                tenant.records = v2
                tenant.requests = 0
                tenant.fail_at, tenant.fault = fail_at, fault
                failed = False
                try:
                    await poller.poll(COMPANIES)
                except PollError as exc:
                    failed = True
                    assert "companies" in str(exc)
                if fail_at is None:
                    assert not failed, "a clean sweep of random content failed"

                after = dict(store.iter_snapshots("companies"))
                events = [e.cloudevent() for e in store.list_events()]
                ordered = sorted(r["Gsid"] for r in v2)
                pages = [ordered[i : i + 3] for i in range(0, len(ordered), 3)]
                committed = {k for k, r in after.items() if r.get("Rev") == 2}
                # whole pages or nothing: the committed keys are a prefix of whole pages
                assert any(
                    committed == {k for p in pages[:n] for k in p} for n in range(len(pages) + 1)
                ), "a page was committed in part"
                changed = {e["data"]["key"] for e in events if e["data"]["change"] != "deleted"}
                assert changed == committed, "events differ from the committed changes"
                deleted = {e["data"]["key"] for e in events if e["data"]["change"] == "deleted"}
                if failed:
                    assert not deleted, "a failed sweep deleted records"
                    assert set(after) >= set(baseline) - committed
                else:
                    gone = set(baseline) - {r["Gsid"] for r in v2}
                    assert deleted == gone
                    assert set(after) == set(ordered)
            finally:
                store.close()
        assert _integrity(path) == "ok"


def test_a_lone_surrogate_in_a_record_does_not_block_its_source() -> None:
    """A record value "\\ud800" (a legal JSON escape) is stored; the sweep completes."""

    async def go() -> None:
        clock = FakeClock()
        tenant = Tenant([_company(0, 1, {"Name": "\ud800"}), _company(1, 1, {"Name": "ok"})])
        with tempfile.TemporaryDirectory() as tmp:
            async with httpx.AsyncClient(transport=httpx.MockTransport(tenant.handler)) as http:
                store = Store.open(Path(tmp) / "w.db", clock=clock)
                try:
                    await Poller(store, _client(http, clock), host="a", clock=clock).poll(COMPANIES)
                    assert store.count_snapshots("companies") == 2
                finally:
                    store.close()

    asyncio.run(go())
