"""Single error branches of the client, each against an httpx.MockTransport handler."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from watcher.clock import FakeClock
from watcher.core.normalize import normalize_record
from watcher.errors import (
    ApiError,
    AuthError,
    MalformedResponseError,
    RateLimitedError,
    SourceError,
    TransientError,
)
from watcher.gainsight import Budget, Condition, GainsightClient, Priority

from .helpers import BASE, KEY, envelope, json_response, mock_client, source

OK = envelope({"records": [{"Gsid": "1P02A", "ModifiedDate": 1521743018667}]})


def sequence(*responses: httpx.Response | Exception) -> tuple[Callable[..., Any], list[Any]]:
    """A handler answering ``responses`` in order (the last one repeats); records requests."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses[min(len(seen) - 1, len(responses) - 1)]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


async def test_requests_carry_the_key_only_in_the_accesskey_header() -> None:
    handler, seen = sequence(json_response(200, OK))
    async with mock_client(handler) as client:
        result = await client.ping()
    assert result.request_id == "req-1"
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == BASE + "/v1/data/objects/query/Company"
    assert request.headers["Accesskey"] == KEY
    assert request.headers["Content-Type"] == "application/json"
    assert KEY not in str(request.url)
    assert json.loads(request.content) == {"select": ["Gsid"], "limit": 1, "offset": 0}


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_failures_raise_at_once_naming_the_setting_never_the_key(status: int) -> None:
    body = envelope(None, result=False, errorCode="GS_APIG_2401", errorDesc="Unauthorized")
    handler, seen = sequence(json_response(status, body, **{"x-gs-request-id": "rid-9"}))
    async with mock_client(handler) as client:
        with pytest.raises(AuthError) as info:
            await client.ping()
    assert len(seen) == 1
    message = str(info.value)
    assert "gainsight.access_key_env" in message
    assert "access_key_file" in message
    assert "rid-9" in message
    assert KEY not in message
    assert info.value.status == status


async def test_invalid_authorization_headers_at_http_400_is_an_auth_error() -> None:
    body = envelope(None, result=False, errorCode="GSOBJ_1024", errorDesc="Invalid headers")
    handler, seen = sequence(json_response(400, body))
    async with mock_client(handler) as client:
        with pytest.raises(AuthError, match="access_key_env") as info:
            await client.ping()
    assert len(seen) == 1
    assert info.value.error_code == "GSOBJ_1024"


async def test_429_waits_for_retry_after_then_succeeds() -> None:
    clock = FakeClock()
    handler, seen = sequence(
        json_response(429, envelope(None, result=False), **{"Retry-After": "7"}),
        json_response(200, OK),
    )
    async with mock_client(handler, clock=clock) as client:
        page = await anext(client.iter_pages(source(), priority=Priority.HIGH))
        assert client.budget.stats.rate_limited == 1
        assert client.stats.rate_limited == 1
    assert page.calls == 2
    assert len(seen) == 2
    assert sum(clock.slept) == pytest.approx(7)
    assert normalize_record(page.records[0])["ModifiedDate"] == "2018-03-22T18:23:38.667Z"


async def test_429_without_retry_after_waits_for_the_window_boundary_then_gives_up() -> None:
    """No Retry-After: each wait ends just past the next 60 s boundary (Gainsight's fixed
    window), and the client gives up only when the waits pass max_retry_after_s - not
    after a fixed count that a 60 s window can outlast."""
    clock = FakeClock(datetime(2026, 11, 23, 16, 0, 20, tzinfo=UTC))
    handler, seen = sequence(json_response(429, envelope(None, result=False)))
    async with mock_client(handler, clock=clock, max_retries=2) as client:
        with pytest.raises(RateLimitedError, match="429"):
            await client.ping()
    assert len(seen) > 3  # more than max_retries: the count is not what ends it
    assert sum(clock.slept) <= 900
    first = clock.slept[0]
    assert 40 <= first <= 40 + 2.5  # 16:00:20 -> just past 16:01:00


async def test_429_for_one_whole_window_is_outlasted() -> None:
    """A tenant that refuses for the rest of its 60 s window, then answers: one read."""
    clock = FakeClock(datetime(2026, 11, 23, 16, 0, 1, tzinfo=UTC))
    busy = json_response(429, envelope(None, result=False))
    handler, seen = sequence(*([busy] * 6), json_response(200, OK))
    async with mock_client(handler, clock=clock, max_retries=5) as client:
        page = await anext(client.iter_pages(source(), priority=Priority.HIGH))
    assert page.records
    assert len(seen) == 7


async def test_429_with_an_unreasonable_retry_after_fails_fast() -> None:
    handler, seen = sequence(json_response(429, envelope(None), **{"Retry-After": "86400"}))
    async with mock_client(handler) as client:
        with pytest.raises(RateLimitedError):
            await client.ping()
    assert len(seen) == 1


async def test_retry_after_as_an_http_date_is_honoured() -> None:
    clock = FakeClock(datetime(2026, 11, 23, 16, 0, tzinfo=UTC))
    handler, _ = sequence(
        json_response(429, envelope(None), **{"Retry-After": "Mon, 23 Nov 2026 16:00:12 GMT"}),
        json_response(200, OK),
    )
    async with mock_client(handler, clock=clock) as client:
        await client.ping()
    assert sum(clock.slept) == pytest.approx(12)


async def test_5xx_is_retried_with_jitter_and_recovers() -> None:
    clock = FakeClock()
    err = envelope(None, result=False, errorCode="GU_1101", errorDesc="Oops")
    handler, seen = sequence(
        json_response(500, err), json_response(503, err), json_response(200, OK)
    )
    async with mock_client(handler, clock=clock) as client:
        await client.ping()
        metrics = client.metrics()
    assert metrics["requests"] == 3
    assert metrics["retries"] == 2
    assert metrics["errors_server"] == 2
    assert metrics["budget_calls_high"] == 3
    assert metrics["budget_used_last_minute"] == 3
    assert len(seen) == 3
    assert len(clock.slept) == 2


async def test_5xx_that_persists_becomes_transient_error_with_code() -> None:
    err = envelope(None, result=False, errorCode="GU_1101", errorDesc="Oops", requestId="r5")
    handler, seen = sequence(json_response(500, err))
    async with mock_client(handler, max_retries=2) as client:
        with pytest.raises(TransientError) as info:
            await client.ping()
    assert len(seen) == 3
    assert info.value.error_code == "GU_1101"
    assert info.value.request_id == "r5"
    assert '"Oops"' in str(info.value)  # Gainsight's own description is shown


@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout("t"), httpx.ConnectTimeout("t"), httpx.ConnectError("refused")],
)
async def test_timeouts_and_connection_errors_are_retried_then_transient(exc: Exception) -> None:
    handler, seen = sequence(exc)
    async with mock_client(handler, max_retries=2) as client:
        with pytest.raises(TransientError) as info:
            await client.ping()
    assert len(seen) == 3
    assert isinstance(info.value.__cause__, httpx.HTTPError)


async def test_a_truncated_page_is_retried_and_recovers() -> None:
    handler, seen = sequence(
        httpx.Response(200, content=b'{"result":true,"data":{"records":[{"Gsid":"1P0'),
        json_response(200, OK),
    )
    async with mock_client(handler) as client:
        await client.ping()
    assert len(seen) == 2


async def test_malformed_replies_that_persist_raise_malformed_response_error() -> None:
    handler, seen = sequence(httpx.Response(200, content=b"<html>gateway</html>"))
    async with mock_client(handler, max_retries=5, malformed_retries=2) as client:
        with pytest.raises(MalformedResponseError):
            await client.ping()
    assert len(seen) == 3


async def test_result_false_on_200_raises_api_error_without_retrying() -> None:
    body = envelope({}, result=False, errorCode="COCKPIT_5101", errorDesc="bad - gsidasdf")
    handler, seen = sequence(json_response(200, body))
    async with mock_client(handler) as client:
        with pytest.raises(ApiError) as info:
            await client.ping()
    assert len(seen) == 1
    assert info.value.error_code == "COCKPIT_5101"
    assert 'COCKPIT_5101 "bad - gsidasdf"' in str(info.value)


async def test_a_redirect_is_reported_as_a_base_url_problem() -> None:
    handler, _ = sequence(httpx.Response(302, headers={"Location": "https://login.example"}))
    async with mock_client(handler) as client:
        with pytest.raises(ApiError, match="base_url"):
            await client.ping()


async def test_a_404_html_page_is_an_api_error_not_retried() -> None:
    handler, seen = sequence(httpx.Response(404, content=b"<html>not found</html>"))
    async with mock_client(handler) as client:
        with pytest.raises(ApiError, match="base_url"):
            await client.ping()
    assert len(seen) == 1


async def test_a_server_that_ignores_offset_is_detected_instead_of_looping_forever() -> None:
    rows = [{"Gsid": f"1P02{i}"} for i in range(3)]
    handler, _ = sequence(json_response(200, envelope(rows)))
    async with mock_client(handler) as client:
        with pytest.raises(ApiError, match="ignores offset"):
            async for _ in client.iter_pages(source(page_size=3)):
                pass


def test_an_access_key_that_cannot_be_a_header_is_rejected_without_echoing_it() -> None:
    clock = FakeClock()
    with pytest.raises(AuthError) as info:
        GainsightClient(
            httpx.AsyncClient(),
            base_url=BASE,
            access_key="bad key\nX-Injected: 1",
            budget=Budget(1, 1, clock),
            clock=clock,
        )
    assert "X-Injected" not in str(info.value)
    assert "access_key_file" in str(info.value)


async def test_call_logs_carry_no_key_and_no_error_desc() -> None:
    """The per-call debug lines never carry errorDesc; the error shows it, key redacted."""
    secret_desc = f"value Jane-Doe-123 is invalid for key {KEY}"
    body = envelope(None, result=False, errorCode="GSOBJ_1002", errorDesc=secret_desc)
    handler, _ = sequence(json_response(400, body, **{"x-gs-request-id": "rid-l"}))
    with capture_logs() as logs:
        async with mock_client(handler) as client:
            with pytest.raises(ApiError) as info:
                await client.ping()
    assert logs
    assert logs[0]["event"] == "gainsight.call"
    assert logs[0]["request_id"] == "rid-l"
    assert logs[0]["status"] == 400
    text = repr(logs) + str(info.value)
    assert KEY not in text
    assert "Jane-Doe" not in repr(logs)
    assert "Jane-Doe-123 is invalid for key [redacted]" in str(info.value)


def _raise(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def _answer(status: int, content: bytes, **headers: str) -> Callable[..., httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers=headers)

    return handler


def _answer_once(status: int, content: bytes) -> Callable[..., httpx.Response]:
    """``content`` for the first page, then an empty page (a server that honours paging)."""

    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content or b"{}")
        later = sent.get("offset", 0) > 0 or sent.get("pageNumber", 1) > 1
        return httpx.Response(status, content=b'{"result": true, "data": []}' if later else content)

    return handler


_NESTED = b"[" * 100_000 + b"]" * 100_000

FAILURES: dict[str, Callable[[httpx.Request], httpx.Response]] = {
    "connect-error": _raise(httpx.ConnectError("refused")),
    "connect-timeout": _raise(httpx.ConnectTimeout("slow")),
    "read-timeout": _raise(httpx.ReadTimeout("slow")),
    "write-timeout": _raise(httpx.WriteTimeout("slow")),
    "pool-timeout": _raise(httpx.PoolTimeout("busy")),
    "read-error": _raise(httpx.ReadError("reset")),
    "write-error": _raise(httpx.WriteError("reset")),
    "remote-protocol": _raise(httpx.RemoteProtocolError("peer closed")),
    "local-protocol": _raise(httpx.LocalProtocolError("bad header")),
    "proxy-error": _raise(httpx.ProxyError("proxy")),
    "unsupported-protocol": _raise(httpx.UnsupportedProtocol("ftp")),
    "decoding-error": _raise(httpx.DecodingError("gzip")),
    "too-many-redirects": _raise(httpx.TooManyRedirects("loop")),
    "invalid-url": _raise(httpx.InvalidURL("bad")),
    "stream-closed": _raise(httpx.StreamClosed()),
    "os-error": _raise(OSError(101, "unreachable")),
    "empty-body": _answer(200, b""),
    "not-utf8": _answer(200, b"\xff\xfe\x00"),
    "html": _answer(200, b"<html>maintenance</html>"),
    "truncated": _answer(200, b'{"result": true, "data": {"records": [{"Gsid": "1'),
    "json-number": _answer(200, b"42"),
    "json-null": _answer(200, b"null"),
    "deep-nesting": _answer(200, _NESTED),
    "no-result-key": _answer(200, b'{"data": []}'),
    "data-string": _answer(200, b'{"result": true, "data": "x"}'),
    "records-not-list": _answer(200, b'{"result": true, "data": {"records": 5}}'),
    "record-not-object": _answer(200, b'{"result": true, "data": [1]}'),
    "records-missing": _answer(200, b'{"result": true, "data": {"rows": []}}'),
    "result-false": _answer(200, b'{"result": false, "errorCode": "X", "errorDesc": "v"}'),
    "result-false-no-code": _answer(200, b'{"result": false}'),
    "400-envelope": _answer(400, b'{"result": false, "errorCode": "GSOBJ_1005"}'),
    "400-result-true": _answer(400, b'{"result": true, "data": []}'),
    "400-garbage": _answer(400, b"nope"),
    "400-json-list": _answer(400, b"[]"),
    "401": _answer(401, b""),
    "403-garbage": _answer(403, b"\x00"),
    "404": _answer(404, b"<html>"),
    "408": _answer(408, b""),
    "429": _answer(429, b""),
    "429-bad-retry-after": _answer(429, b"", **{"Retry-After": "soon"}),
    "500": _answer(500, b"oops"),
    "502-json": _answer(502, b'{"result": false, "errorCode": 7}'),
    "301": _answer(301, b"", Location="http://elsewhere"),
    "204": _answer(204, b""),
    "keys-missing": _answer_once(200, b'{"result": true, "data": [{"Name": "x"}]}'),
}


async def _run(client: GainsightClient, call: str) -> None:
    if call == "ping":
        await client.ping()
    elif call == "pages":
        async for _ in client.iter_pages(source()):
            pass
    elif call == "keys":
        await client.fetch_by_keys(source(name="ctas", kind="cta"), ["1S01A", "1S01B"])
    elif call == "deleted-mda":
        await client.deleted_since(source(), datetime(2026, 1, 1, tzinfo=UTC))
    else:
        await client.deleted_since(
            source(name="ctas", kind="cta"), datetime(2026, 1, 1, tzinfo=UTC)
        )


@pytest.mark.parametrize("name", sorted(FAILURES))
@pytest.mark.parametrize("call", ["ping", "pages", "keys", "deleted-mda", "deleted-cta"])
async def test_no_httpx_json_or_key_error_ever_leaks(name: str, call: str) -> None:
    """Every failure kind surfaces as a SourceError subclass, never carrying the key."""
    async with mock_client(FAILURES[name], max_retries=1) as client:
        if name == "keys-missing" and call in ("ping", "pages", "keys"):
            await _run(client, call)  # rows without the key are rows, not a failure
            return
        with pytest.raises(SourceError) as info:
            await _run(client, call)
    exc = info.value
    assert KEY not in str(exc)
    assert KEY not in repr(exc.args)
    assert type(exc).__module__ == "watcher.errors"


async def test_a_tenant_without_the_delete_log_object_gets_a_clear_error() -> None:
    body = envelope(
        None, result=False, errorCode="OBJECT_NOT_FOUND", errorDesc="Requested object not found."
    )
    handler, seen = sequence(json_response(400, body, **{"x-gs-request-id": "rid-d"}))
    async with mock_client(handler) as client:
        with pytest.raises(ApiError, match="no record_delete_log object") as info:
            await client.deleted_since(source(), datetime(2026, 1, 1, tzinfo=UTC))
    assert info.value.error_code == "OBJECT_NOT_FOUND"
    assert "req-1" in str(info.value)  # the envelope's requestId wins over the header
    sent = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1/data/objects/query/record_delete_log"
    assert sent["select"] == ["RecordId", "DeletedOn", "ObjectName"]
    assert sent["where"] == {
        "conditions": [
            # explicit zone, and 14 h further back than asked: any zone reading is covered
            {
                "name": "DeletedOn",
                "alias": "A",
                "operator": "GTE",
                "value": ["2025-12-31T10:00:00+00:00"],
            },
            {"name": "ObjectName", "alias": "B", "operator": "EQ", "value": ["Company"]},
        ],
        "expression": "A AND B",
    }


async def test_goals_on_a_page_numbered_path_override_have_no_delete_feed() -> None:
    handler, seen = sequence(json_response(200, OK))
    goals = source(name="goals", kind="goal", path="/v1/csgoal/external/list", paging="page")
    async with mock_client(handler) as client:
        with pytest.raises(ApiError, match="no delete feed"):
            await client.deleted_since(goals, datetime(2026, 1, 1, tzinfo=UTC))
    assert seen == []


async def test_datetime_condition_values_are_sent_as_iso_text() -> None:
    handler, seen = sequence(json_response(200, envelope([])))
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with mock_client(handler) as client:
        rows = await client.read_all(
            source(), conditions=[Condition("ModifiedDate", "GTE", (when,))]
        )
    assert rows == []
    sent = json.loads(seen[0].content)
    assert sent["where"]["conditions"][0]["value"] == ["2026-01-02T03:04:05+00:00"]
    assert sent["orderBy"] == {"Gsid": "asc"}
    assert sent["select"] == ["Gsid", "Name", "ModifiedDate"]


async def test_a_short_page_answered_again_for_the_next_offset_ends_the_read() -> None:
    """A server that ignores offset on a short page: the read ends with the rows once."""
    rows = [{"Gsid": f"1P02{i}"} for i in range(3)]
    handler, seen = sequence(json_response(200, envelope(rows)))
    async with mock_client(handler) as client:
        got = [r async for p in client.iter_pages(source()) for r in p.records]
    assert got == rows
    assert len(seen) == 2


@pytest.mark.parametrize("retry_after", ["0", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_429_saying_retry_now_for_ever_is_not_hammered(retry_after: str) -> None:
    """A Retry-After of 0 or in the past still waits a second per attempt, so a tenant
    that keeps answering 429 "now" ends in RateLimitedError after max_retry_after_s
    (before: the client retried at once, for ever on a fake clock, 15 minutes of
    back-to-back requests on a real one)."""
    clock = FakeClock(datetime(2026, 11, 23, 16, 0, 20, tzinfo=UTC))
    handler, seen = sequence(
        json_response(429, envelope(None, result=False), **{"Retry-After": retry_after})
    )
    async with mock_client(handler, clock=clock) as client:
        with pytest.raises(RateLimitedError, match="429"):
            await client.ping()
    assert all(wait >= 1.0 for wait in clock.slept if wait)
    assert len(seen) <= 901
