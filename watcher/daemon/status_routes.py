"""``GET /`` (the status page) and ``GET /v1/status`` (the same as JSON) for the ``[http]``
server.

On a loopback listen they are open like ``/healthz``. On any other listen they take the
feed token, checked by the feed's own check (``Authorization: Bearer <token>``); a
browser may also give it as the password of HTTP Basic authentication (any user name),
which it asks for itself on the page's 401.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from watcher.daemon.status_page import render

REFRESH_S = 15
_NO_STORE = {"Cache-Control": "no-store"}


def status_routes(
    status: Callable[[], dict[str, Any]],
    *,
    needs_token: bool,
    expected: bytes | None,
    authorized: Callable[[Request, bytes], bool],
) -> list[Route]:
    def allowed(request: Request) -> bool:
        if not needs_token:
            return True
        if expected is None:
            return False
        return authorized(request, expected) or _basic_ok(request, expected, authorized)

    def refused(html: bool) -> Response:
        if needs_token and expected is None:
            return JSONResponse(
                {"error": "the status page is off: this listen address needs a feed token"},
                status_code=404,
            )
        scheme = 'Basic realm="watcher", charset="UTF-8"' if html else 'Bearer realm="watcher"'
        return JSONResponse(
            {"error": "missing or wrong bearer token"},
            status_code=401,
            headers={"WWW-Authenticate": scheme},
        )

    async def page(request: Request) -> Response:
        if not allowed(request):
            return refused(html=True)
        body = render(await asyncio.to_thread(status), refresh_s=REFRESH_S)
        return HTMLResponse(body, headers=_NO_STORE)

    async def as_json(request: Request) -> Response:
        if not allowed(request):
            return refused(html=False)
        return JSONResponse(await asyncio.to_thread(status), headers=_NO_STORE)

    return [Route("/", page), Route("/v1/status", as_json)]


def _basic_ok(
    request: Request, expected: bytes, authorized: Callable[[Request, bytes], bool]
) -> bool:
    """HTTP Basic with the token as password, checked by the feed's own comparison."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        _, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    scope = dict(request.scope)
    headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
    scope["headers"] = [*headers, (b"authorization", f"Bearer {password}".encode())]
    return authorized(Request(scope), expected)
