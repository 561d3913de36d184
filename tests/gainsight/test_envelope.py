"""Envelope parsing: both data shapes, the three "no rows" forms, errors without errorDesc."""

from __future__ import annotations

from typing import Any

import pytest

from watcher.errors import ApiError, MalformedResponseError
from watcher.gainsight.envelope import decode_json, header_request_id, read_records

from .helpers import envelope

ROWS = [{"Gsid": "1P02A", "Name": "Heroku"}]


@pytest.mark.parametrize("data", [ROWS, {"records": ROWS}], ids=["bare-list", "records"])
def test_both_data_shapes_give_the_same_rows(data: Any) -> None:
    reply = read_records(envelope(data), what="q", status=200)
    assert reply.records == ROWS
    assert reply.request_id == "req-1"


@pytest.mark.parametrize(
    ("status", "body", "form"),
    [
        (200, envelope([]), "empty-list"),
        (200, envelope({"records": []}), "empty-list"),
        (
            200,
            envelope(
                None,
                result=False,
                errorCode="GSOBJ_1XXX",
                errorDesc="No data found for given criteria",
            ),
            "result-false",
        ),
        (
            400,
            envelope(
                None,
                result=False,
                errorCode="GSOBJ_1011",
                errorDesc="No entity matches the given criteria",
            ),
            "result-false",
        ),
        (200, envelope(None), "null-data"),
    ],
)
def test_every_empty_form_means_no_rows(status: int, body: Any, form: str) -> None:
    reply = read_records(body, what="q", status=status)
    assert reply.records == []
    assert reply.no_rows_form == form


def test_result_false_is_an_api_error_with_code_request_id_and_errordesc() -> None:
    body = envelope(
        {},
        result=False,
        errorCode="GSOBJ_1005",
        errorDesc="Invalid DateTime for column Secret_Note__gc value 'Jane Doe SSN 123'",
        requestId="rid-42",
    )
    with pytest.raises(ApiError) as info:
        read_records(body, what="/v1/data/objects/query/Company", status=200)
    err = info.value
    assert err.error_code == "GSOBJ_1005"
    assert err.request_id == "rid-42"
    assert "Secret_Note__gc" in str(err)  # Gainsight's own words name the column
    assert err.desc is not None
    assert err.desc.startswith("Invalid DateTime")


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"data": []},
        {"result": "true", "data": []},
        envelope("text"),
        envelope({"rows": []}),
        envelope({"records": "x"}),
        envelope([1, 2]),
    ],
)
def test_anything_but_the_envelope_is_malformed(body: Any) -> None:
    with pytest.raises(MalformedResponseError):
        read_records(body, what="q", status=200)


@pytest.mark.parametrize("content", [b'{"result": true, "data": [{"Gsid"', b"<html>", b"\xff\xfe"])
def test_truncated_or_non_json_bodies_are_malformed(content: bytes) -> None:
    with pytest.raises(MalformedResponseError, match="not valid JSON"):
        decode_json(content, what="q", request_id=None)


def test_request_id_falls_back_to_headers() -> None:
    assert header_request_id({"x-gs-request-id": "h1"}) == "h1"
    assert header_request_id({"x-request-id": "h2"}) == "h2"
    assert header_request_id({}) is None
    body = envelope([], requestId=None)
    assert read_records(body, what="q", status=200, header_id="h3").request_id == "h3"


def test_result_true_with_an_empty_data_object_is_an_empty_page() -> None:
    body: dict[str, Any] = {
        "result": True,
        "errorCode": None,
        "errorDesc": None,
        "requestId": "r",
        "data": {},
    }
    reply = read_records(body, what="/v1/data/objects/query/Company", status=200)
    assert reply.records == []
    assert reply.no_rows_form == "empty-data"


def test_replies_orjson_refuses_are_read_as_the_stdlib_reads_them() -> None:
    """NaN, a number beyond a double and a lone surrogate escape reach the intake as
    ``json`` reads them (the intake nulls or skips them); anything else stays an error."""
    import math

    from watcher.gainsight.envelope import parse_json

    body = parse_json(b'{"a": NaN, "b": 1e400, "c": "\\ud800", "d": [1, 2.5]}')
    assert math.isnan(body["a"])
    assert body["b"] == math.inf
    assert body["c"] == "\ud800"
    assert body["d"] == [1, 2.5]
    with pytest.raises(ValueError):
        parse_json(b'{"a": ')
