"""Admin HTTP API of the simulated tenant, under ``/__sim/`` (same access key, no budget,
no faults). Replies use the envelope; ``data`` holds the payload.

    GET  /__sim/changes?after=SEQ     ground-truth change log after SEQ
    POST /__sim/mutate                {"random": N} or {"ops": [{"op", "object", "key", "fields"}]}
    GET  /__sim/options               current options and faults
    POST /__sim/options               {"options": {...}, "faults": {...}} (partial updates)
    GET  /__sim/time                  {"now": ISO, "fake": bool}
    POST /__sim/time/advance          {"seconds": S} (FakeClock only)
    GET  /__sim/records/{object}/{key}  one record, dates as ISO
    GET  /__sim/stats                 record counts, requests served
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from watcher.dates import format_utc
from watcher.sim.envelope import envelope, error_response, json_response
from watcher.sim.fields import render
from watcher.sim.options import apply_settings
from watcher.sim.schema import SCHEMAS

if TYPE_CHECKING:
    from watcher.sim.tenant import Tenant


class AdminError(Exception):
    pass


async def handle_admin(tenant: Tenant, request: Request, request_id: str) -> Response:
    path = request.url.path[len("/__sim") :].rstrip("/")
    try:
        body = await _body(request) if request.method == "POST" else {}
        data = _dispatch(tenant, request.method, path, body, dict(request.query_params))
    except AdminError as exc:
        return error_response(request_id, 400, "SIM_BAD_REQUEST", str(exc))
    except LookupError as exc:
        return error_response(request_id, 404, "SIM_NOT_FOUND", str(exc).strip("'\""))
    if data is None:
        return error_response(request_id, 404, "GS_APIG_1000", "Not Found", message="Not Found")
    return json_response(request_id, envelope(request_id, data))


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise AdminError("request body is not JSON") from None
    if not isinstance(body, dict):
        raise AdminError("request body must be a JSON object")
    return body


def _dispatch(
    tenant: Tenant, method: str, path: str, body: dict[str, Any], query: dict[str, str]
) -> Any:
    if method == "GET" and path == "/changes":
        try:
            after = int(query.get("after", "0"))
        except ValueError:
            raise AdminError("'after' must be an integer sequence number") from None
        changes = tenant.changes(after)
        return {"changes": [c.to_dict() for c in changes], "last_seq": tenant.last_seq}
    if method == "POST" and path == "/mutate":
        return {"changes": [c.to_dict() for c in _mutate(tenant, body)]}
    if path == "/options" and method in ("GET", "POST"):
        if method == "POST":
            try:
                with tenant.lock:
                    apply_settings(tenant.options, body.get("options") or {})
                    apply_settings(tenant.faults, body.get("faults") or {})
            except TypeError as exc:
                raise AdminError(str(exc)) from None
        return {"options": asdict(tenant.options), "faults": asdict(tenant.faults)}
    if method == "GET" and path == "/time":
        return {"now": format_utc(tenant.now()), "fake": hasattr(tenant.clock, "advance")}
    if method == "POST" and path == "/time/advance":
        advance = getattr(tenant.clock, "advance", None)
        if advance is None:
            raise AdminError("the tenant runs on the system clock; time cannot be advanced")
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise AdminError("'seconds' must be a non-negative number")
        advance(float(seconds))
        return {"now": format_utc(tenant.now()), "fake": True}
    if method == "GET" and path.startswith("/records/"):
        _, _, rest = path.partition("/records/")
        object_name, _, key = rest.partition("/")
        canonical = tenant.object_name(object_name)
        record = tenant.get(canonical, key) if canonical else None
        if canonical is None or record is None:
            raise LookupError(f"no {object_name} record {key!r}")
        schema = SCHEMAS[canonical]
        return {
            k: render(fd, v, "iso") if (fd := schema.field(k)) else v for k, v in record.items()
        }
    if method == "GET" and path == "/stats":
        with tenant.lock:
            counts = {name: len(t.records) for name, t in tenant.tables.items()}
        return {"records": counts, "requests_served": tenant.requests_served}
    return None


def _mutate(tenant: Tenant, body: dict[str, Any]) -> list[Any]:
    if "random" in body:
        n = body["random"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise AdminError("'random' must be a non-negative integer")
        return tenant.random_mutations(n)
    ops = body.get("ops")
    if not isinstance(ops, list):
        raise AdminError("send {'random': N} or {'ops': [{'op', 'object', 'key', 'fields'}]}")
    out = []
    for op in ops:
        if not isinstance(op, dict):
            raise AdminError("each op must be an object")
        try:
            out.append(
                tenant.mutate(
                    op.get("op", ""), op.get("object", ""), op.get("key"), op.get("fields")
                )
            )
        except ValueError as exc:
            raise AdminError(str(exc)) from None
    return out
