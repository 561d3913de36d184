"""The simulated tenant's ASGI app (Starlette): auth, rate limit, faults, routes.

Order of checks per request: ``Accesskey`` (401 ``GS_APIG_2401``) -> admin API under
``/__sim/`` (no budget, no faults) -> fixed-window budget (429) -> route (404
``GS_APIG_1000``) -> injected faults -> body -> query. Every reply is the envelope.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from watcher.sim.admin import handle_admin
from watcher.sim.envelope import (
    dumps,
    envelope,
    error_response,
    new_request_id,
    raw_response,
)
from watcher.sim.fields import QueryError
from watcher.sim.meta import describe_object, object_list
from watcher.sim.options import FaultKind
from watcher.sim.query import Page, cockpit_query, mda_query
from watcher.sim.schema import CTA, GOAL
from watcher.sim.tenant import Tenant

_MDA = re.compile(r"^/v1/data/objects/query/([A-Za-z0-9_]+)/?$")
_CTA_LIST = "/v2/cockpit/cta/list"
_CTA_DELETED = "/v2/cockpit/cta/deleted/list"
_OBJECTS_LIST = "/v1/meta/services/objects/list"
_DESCRIBE = re.compile(r"^/v1/meta/services/objects/([A-Za-z0-9_]+)/describe/?$")
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
log = logging.getLogger("watcher.sim")


def create_app(tenant: Tenant, access_key: str) -> Starlette:
    """The ASGI app serving ``tenant``; requests must carry ``Accesskey: access_key``."""
    if not access_key:
        raise ValueError("the simulated tenant needs a non-empty access key")
    key = access_key.encode()

    async def dispatch(request: Request) -> Response:
        request_id = new_request_id()
        try:
            return await handle(request, request_id)
        except Exception:  # the one boundary: a sim bug still gets the envelope
            log.exception("simulated tenant failed on %s %s", request.method, request.url.path)
            return error_response(request_id, 500, "GU_1101", "Oops, something went wrong")

    async def handle(request: Request, request_id: str) -> Response:
        given = request.headers.get("accesskey", "").encode()
        if not given or not hmac.compare_digest(given, key):
            return error_response(
                request_id, 401, "GS_APIG_2401", "Unauthorized", message="Unauthorized"
            )
        path = request.url.path
        if path.startswith("/__sim/"):
            return await handle_admin(tenant, request, request_id)
        wait = tenant.admit()
        headers = _rate_headers(tenant)
        if wait is not None:
            if tenant.options.retry_after:
                headers["Retry-After"] = str(int(wait + 0.999))
            return error_response(
                request_id,
                429,
                "GS_APIG_1429",
                "Too many requests: the API limit for this tenant was reached",
                message="Too Many Requests",
                headers=headers,
            )
        route = _route(tenant, request.method, path)
        if route is None:
            return error_response(
                request_id, 404, "GS_APIG_1000", "Not Found", message="Not Found", headers=headers
            )
        fault = _pick_fault(tenant)
        if tenant.faults.latency > 0:
            await asyncio.sleep(tenant.faults.latency)
        if fault == "error":
            return error_response(
                request_id, 500, "GU_1101", "Oops, something went wrong", headers=headers
            )
        if fault == "malformed":
            return raw_response(request_id, b"<html><body>Bad Gateway</body></html>", 200, headers)
        if fault == "result_false":
            return error_response(
                request_id, 200, "GU_1101", "Oops, something went wrong", headers=headers
            )
        kind, object_name = route
        body: dict[str, Any] = {}
        if request.method == "POST":
            try:
                parsed = json.loads(await request.body() or b"{}")
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                return error_response(
                    request_id, 400, "GSOBJ_1008", "Invalid request body", headers=headers
                )
            body = parsed
        try:
            reply = _serve(tenant, kind, object_name, body, request_id, short=fault == "short")
        except QueryError as exc:
            return error_response(
                request_id, exc.status, exc.code, exc.desc, data=exc.data, headers=headers
            )
        if isinstance(reply, Response):
            reply.headers.update(headers)
            return reply
        content = dumps(reply)
        if fault == "truncated":
            content = content[: max(1, len(content) // 2)]
        return raw_response(request_id, content, 200, headers)

    return Starlette(routes=[Route("/{path:path}", dispatch, methods=_METHODS)])


def _route(tenant: Tenant, method: str, path: str) -> tuple[str, str] | None:
    if method == "GET" and path.rstrip("/") == _OBJECTS_LIST:
        return ("objects", "")
    if method == "GET" and (m := _DESCRIBE.match(path)):
        return ("describe", m.group(1))
    if method != "POST":
        return None
    if m := _MDA.match(path):
        return ("mda", m.group(1))
    if path.rstrip("/") == _CTA_LIST:
        return ("cockpit", CTA)
    if path.rstrip("/") == _CTA_DELETED:
        return ("cockpit_deleted", CTA)
    if not tenant.options.strict_docs and path.rstrip("/") == tenant.options.goals_path.rstrip("/"):
        return ("cockpit", GOAL)
    return None


def _pick_fault(tenant: Tenant) -> FaultKind | None:
    faults = tenant.faults
    with tenant.lock:
        if faults.script:
            return faults.script.pop(0)
        rng = tenant.fault_rng
        for kind, rate in (
            ("error", faults.error_rate),
            ("malformed", faults.malformed_rate),
            ("truncated", faults.truncated_rate),
            ("short", faults.short_page_rate),
            ("result_false", faults.result_false_rate),
        ):
            if rate > 0 and rng.random() < rate:
                return kind  # type: ignore[return-value]  # literal from the tuple above
    return None


def _rate_headers(tenant: Tenant) -> dict[str, str]:
    if not tenant.options.ratelimit_header:
        return {}
    opts = tenant.options
    return {"x-ratelimit-limit": f"{opts.requests_per_minute}/minute, {opts.requests_per_day}/day"}


def _serve(
    tenant: Tenant,
    kind: str,
    object_name: str,
    body: dict[str, Any],
    request_id: str,
    *,
    short: bool = False,
) -> dict[str, Any] | Response:
    if kind == "objects":
        return envelope(request_id, object_list())
    if kind == "describe":
        canonical = tenant.object_name(object_name)
        if canonical is None:
            raise QueryError(400, "OBJECT_NOT_FOUND", "Requested object not found.")
        return envelope(request_id, [describe_object(canonical)])
    later_page = (
        _positive(body.get("offset")) if kind == "mda" else _positive(body.get("pageNumber"), 1)
    )
    if later_page and tenant.faults.mutations_between_pages > 0:
        tenant.random_mutations(tenant.faults.mutations_between_pages)
    with tenant.lock:
        if kind == "mda":
            canonical = tenant.object_name(object_name)
            if canonical is None:
                raise QueryError(400, "OBJECT_NOT_FOUND", "Requested object not found.")
            page: Page = mda_query(tenant, canonical, body)
        else:
            page = cockpit_query(tenant, object_name, body, deleted=kind == "cockpit_deleted")
    if short:
        page = Page(page.rows[: len(page.rows) // 2])
    if not page.rows:
        form = tenant.options.empty_form
        if form == "result_false":
            return envelope(
                request_id, None, result=False, code="GSOBJ_1XXX",
                desc="No data found for given criteria",
            )  # fmt: skip
        if form == "gsobj_1011":
            return error_response(
                request_id, 400, "GSOBJ_1011", "No entity matches the given criteria"
            )
    if kind == "mda":
        data: Any = {"records": page.rows} if tenant.options.data_shape == "records" else page.rows
        return envelope(request_id, data)
    extra = None
    if kind == "cockpit_deleted" or (
        object_name == CTA and body.get("includeonlyDeletedRecords") is True
    ):
        extra = {"pageSize": body.get("pageSize", 100), "currentPageNum": body.get("pageNumber", 1)}
    return envelope(request_id, page.rows, extra=extra)


def _positive(value: Any, base: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > base
