"""Pages read as received (:mod:`watcher.gainsight.rows`): the usual reply becomes
RawRows (each record's bytes, key and modified date; records parsed on demand), any
other reply is left to the general reading, and the poll's intake reads RawRows
exactly as it reads the same records parsed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import orjson
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.poll.test_page_fast_path import CEILING, NOW, Counts, stamps, values
from watcher.core.normalize import fingerprint
from watcher.errors import MalformedResponseError
from watcher.gainsight.envelope import parse_json
from watcher.gainsight.rows import RawRows, read_page
from watcher.poll.intake import Oddities, read_each, read_records

from .helpers import envelope, mock_client, source

ROWS: list[dict[str, Any]] = [
    {"Gsid": "K1", "Name": "Acme", "Arr": 10.5, "ModifiedDate": NOW - 5},
    {"Gsid": "K2", "Name": "Zoë", "Arr": None, "ModifiedDate": NOW - 9, "Tags": [1, {"a": 2}]},
]


def _reply(data: Any, **extra: Any) -> bytes:
    return orjson.dumps(envelope(data, **extra))


@pytest.mark.parametrize("data", [ROWS, {"records": ROWS}], ids=["bare-list", "records"])
def test_a_usual_reply_is_read_as_received(data: Any) -> None:
    read = read_page(_reply(data, requestId="req-7"), "Gsid", "ModifiedDate")
    assert read is not None
    rows, request_id = read
    assert request_id == "req-7"
    assert len(rows) == 2
    assert (rows.keys, rows.stamps) == (["K1", "K2"], [NOW - 5, NOW - 9])
    assert rows == ROWS  # parsed on demand, the same records
    # Compact JSON as orjson writes it: the bytes hash to the records' fingerprints.
    assert rows.fingerprints() == [fingerprint(r) for r in ROWS]
    assert rows.texts() == [orjson.dumps(r).decode() for r in ROWS]
    assert rows.texts([1]) == [orjson.dumps(ROWS[1]).decode()]


def test_a_record_parsed_alone_is_the_one_the_whole_page_holds_later() -> None:
    read = read_page(_reply(ROWS), "Gsid", "ModifiedDate")
    assert read is not None
    rows = read[0]
    one = rows.row(1)
    assert one == ROWS[1]
    assert rows[1] is one
    assert list(rows)[1] is one
    assert rows.row(0) is rows[0]


def test_equality_with_lists_and_other_rows() -> None:
    a = read_page(_reply(ROWS), "Gsid", "ModifiedDate")
    b = read_page(_reply({"records": ROWS}), "Gsid", "ModifiedDate")
    assert a is not None
    assert b is not None
    assert a[0] == b[0]
    assert a[0] == ROWS
    reflected = ROWS == a[0]  # noqa: SIM300 (list.__eq__ defers to RawRows)
    assert reflected
    assert a[0] != ROWS[:1]
    assert a[0] != "K1"


def test_any_spelling_is_read_and_hashed_as_sent() -> None:
    spaced = json.dumps({"result": True, "data": ROWS}, indent=2).encode()
    read = read_page(spaced, "Gsid", "ModifiedDate")
    assert read is not None
    rows = read[0]
    assert rows == ROWS
    assert rows.fingerprints() != [fingerprint(r) for r in ROWS]  # another spelling
    assert rows.fingerprints() == [
        xxhash.xxh3_64_intdigest(text.encode()) - (1 << 63) for text in rows.texts()
    ]
    assert json.loads(rows.texts()[1]) == ROWS[1]


def test_key_field_and_modified_field_may_be_one() -> None:
    read = read_page(_reply(ROWS), "ModifiedDate", "ModifiedDate")
    assert read is not None
    assert read[0].keys == read[0].stamps == [NOW - 5, NOW - 9]


def test_missing_fields_read_as_none() -> None:
    read = read_page(_reply([{"Name": "no key"}]), "Gsid", "ModifiedDate")
    assert read is not None
    assert (read[0].keys, read[0].stamps) == ([None], [None])


@pytest.mark.parametrize(
    "content",
    [
        orjson.dumps({"result": False, "errorCode": "GSOBJ_1002", "data": ROWS}),
        orjson.dumps({"result": "true", "data": ROWS}),
        _reply([]),
        _reply({"records": []}),
        _reply({"records": None}),
        _reply(None),
        _reply({}),
        _reply("rows"),
        _reply([1, 2]),
        _reply([{"Gsid": "K1"}, ["K2"]]),
        b'{"result":true,"data":[{"Gsid":"K1","Arr":NaN}]}',
        b'{"result":true,"data":[{"Gsid":"K1","Name":"\\ud800"}]}',
        b'{"result":true,"data":[{"Gsid":"K1","Name":"\xff"}]}',
        b'{"result":true,"data":[{"Gsid":"K1"}',
        b'{"result":true,"data":[{"Gsid":"K1","x":' + b"[" * 200_000 + b"]" * 200_000 + b"}]}",
        b"<html>",
        b"",
    ],
)
def test_any_other_reply_is_left_to_the_general_reading(content: bytes) -> None:
    assert read_page(content, "Gsid", "ModifiedDate") is None


def test_a_record_is_parsed_as_the_whole_reply_and_the_stdlib_parse_it() -> None:
    """Each record alone or all together: what parsing the whole reply gives, and what
    the stdlib gives (stored snapshots are read back by it): integers beyond 64 bits
    stay exact integers."""
    big = 123456789012345678901234567890
    content = b'{"result":true,"data":[{"Gsid":"K1","Arr":%d,"Low":-%d}]}' % (big, 2**63 + 1)
    read = read_page(content, "Gsid", "ModifiedDate")
    assert read is not None
    whole = parse_json(content)["data"]
    assert [read[0].row(0)] == read[0].rows() == whole == json.loads(content)["data"]
    assert whole[0]["Arr"] == big
    assert type(whole[0]["Low"]) is int
    assert json.loads(read[0].texts()[0]) == whole[0]


# -- the intake reads RawRows as it reads the records parsed -----------------------------


# The page strategies of the fast path's own property test, with integers beyond 64 bits.
big_values = values | st.integers(min_value=2**64, max_value=2**70)
keys = st.sampled_from(["K1", "K2", "K3", "", "é"]) | st.integers(0, 3) | st.none()


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if draw(st.integers(0, 9)):  # now and then a record without a key
        record["Gsid"] = draw(keys)
    if draw(st.booleans()):
        record["ModifiedDate"] = draw(stamps)
    record.update(draw(st.dictionaries(st.sampled_from(["Name", "Arr", "Tags"]), big_values)))
    return record


@settings(max_examples=300, deadline=None)
@given(
    st.lists(records(), min_size=1, max_size=8),
    st.sampled_from([None, "2026-01-01T00:00:00.000Z"]),
    st.booleans(),
)
def test_the_intake_reads_rows_as_received_as_it_reads_them_parsed(
    page: list[dict[str, Any]], top: str | None, spaced: bool
) -> None:
    body = {"result": True, "data": {"records": page}}
    try:
        content = json.dumps(body, indent=1).encode() if spaced else orjson.dumps(body)
    except (TypeError, ValueError):
        return  # not JSON: no reply carries it
    read = read_page(content, "Gsid", "ModifiedDate")
    if read is None:
        return
    rows = read[0]
    args: dict[str, Any] = {"modified_field": "ModifiedDate", "ceiling": CEILING, "page": 1}
    raw_odd = Oddities(Counts(), "companies", "p", "Gsid")
    parsed_odd = Oddities(Counts(), "companies", "p", "Gsid")
    as_received = read_records(rows, raw_odd, top=top, **args)
    parsed = read_each(parse_json(content)["data"]["records"], parsed_odd, top=top, **args)
    assert as_received.records == parsed.records
    assert (as_received.top, as_received.repeated) == (parsed.top, parsed.repeated)
    assert raw_odd.counts == parsed_odd.counts
    assert set(as_received.prints.values()) <= set(rows.fingerprints())  # of the bytes
    if not spaced:  # compact JSON as orjson writes it: the same fingerprints
        assert as_received.prints == parsed.prints


# -- the client hands the usual page over as received ------------------------------------


def test_a_reply_nested_too_deep_is_a_malformed_reply_as_before() -> None:
    """msgspec and the stdlib both give up on nesting this deep: the general reading
    reports a malformed reply (a SourceError the poll handles), never a bare
    RecursionError."""
    deep = b'{"result":true,"data":[{"Gsid":"K1","x":' + b"[" * 200_000 + b"]" * 200_000
    replies = [deep + b"}]}"] * 5

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=replies.pop())

    async def go() -> None:
        async with mock_client(handler, max_retries=1) as client:
            with pytest.raises(MalformedResponseError, match="not valid JSON"):
                await client.read_all(source())

    asyncio.run(go())


def test_the_client_reads_the_usual_page_as_received_and_odd_ones_parsed() -> None:
    replies = iter(
        [
            _reply({"records": ROWS}, requestId="r1"),
            b'{"result":true,"data":{"records":[{"Gsid":"K3","Arr":NaN}]},"requestId":"r2"}',
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=next(replies))

    async def go() -> list[Any]:
        async with mock_client(handler) as client:
            return [p async for p in client.iter_pages(source(page_size=2))]

    pages = asyncio.run(go())
    assert type(pages[0].records) is RawRows
    assert pages[0].records == ROWS
    assert pages[0].request_id == "r1"
    assert type(pages[1].records) is list  # NaN: the general reading (null, as before)
    assert pages[1].records[0]["Gsid"] == "K3"
    assert pages[0].digest is not None
    assert pages[1].digest is not None
