"""The Gainsight reply envelope, on every reply including errors (gainsight-api.md §0, §7)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.responses import Response


def new_request_id() -> str:
    return str(uuid.uuid4())


def envelope(
    request_id: str,
    data: Any = None,
    *,
    result: bool = True,
    code: str | None = None,
    desc: str | None = None,
    message: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "result": result,
        "errorCode": code,
        "errorDesc": desc,
        "requestId": request_id,
        "data": data,
        "message": message,
    }
    if extra:
        body.update(extra)
    return body


def dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def json_response(
    request_id: str, body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return raw_response(request_id, dumps(body), status, headers)


def raw_response(
    request_id: str, content: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    all_headers = {"x-gs-request-id": request_id, "x-request-id": request_id, **(headers or {})}
    return Response(content, status_code=status, media_type="application/json", headers=all_headers)


def error_response(
    request_id: str,
    status: int,
    code: str,
    desc: str,
    *,
    data: Any = None,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = envelope(request_id, data, result=False, code=code, desc=desc, message=message)
    return json_response(request_id, body, status, headers)
