"""Reading Gainsight's reply envelope (pure).

Every read answers ``{"result", "errorCode", "errorDesc", "requestId", "data",
"message"}``. ``data`` is a bare list (doc samples, Cockpit) or
``{"records": [...]}`` (production MDA reads). "No rows" has three forms, all
accepted: 200 with an empty list; ``result: false`` with "No data found for
given criteria"; HTTP 400 ``GSOBJ_1011``.

Errors carry the ``errorCode``, Gainsight's own ``errorDesc`` (secrets redacted,
control characters dropped, cut to :data:`DESC_LIMIT` characters), the request
id, and advice chosen here from the code. The watcher only *reads*: what it
sends is its own select list and filters, so a description echoes those (a field
name, an operator, a filter date), not record values of the tenant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
import xxhash

from watcher.errors import ApiError, MalformedResponseError
from watcher.logging import redact

NO_ROWS_CODES = frozenset({"GSOBJ_1011"})
DESC_LIMIT = 300
_NO_DATA_TEXT = "no data found"

# Safe, value-free descriptions of the documented codes (gainsight-api.md section 7).
_SUMMARIES: dict[str, str] = {
    "GS_APIG_2401": "unauthorized",
    "GS_APIG_1000": "unknown API route; check gainsight.base_url and the source's path",
    "GU_1101": "Gainsight internal error",
    "GSOBJ_1001": "a value is too long",
    "GSOBJ_1002": "a value is invalid",
    "GSOBJ_1003": "Gainsight database failure",
    "GSOBJ_1004": "an id (GSID) is invalid",
    "GSOBJ_1005": "a DateTime value in the filter has an invalid format",
    "GSOBJ_1006": "a Date value in the filter has an invalid format",
    "GSOBJ_1007": "a required value is null",
    "GSOBJ_1008": "the request failed validation",
    "GSOBJ_1023": "invalid API path; check the source's path",
    "GSOBJ_1024": "invalid authorization headers",
    "COCKPIT_5101": "invalid fields in the select clause; check the source's select",
    "COCKPIT_5102": "the Cockpit list refused a filter; check the source's api setting",
    "OBJECT_NOT_FOUND": "the object does not exist in this tenant",
}


@dataclass(frozen=True)
class Reply:
    """A successfully read page of rows."""

    records: Sequence[dict[str, Any]]  # a list, or the client's RawRows
    request_id: str | None
    no_rows_form: str | None = None  # which empty form was seen, for debugging
    digest: int | None = None  # reply_digest of the body, when read from bytes


def reply_digest(content: bytes, body: Any) -> int:
    """A signed 64-bit hash (XXH3) of a reply body as received, its envelope's
    ``requestId`` left out: two replies that carry the same bytes apart from the
    request they answer have the same digest.

    The id is found as the raw text ``"requestId":"<id>"`` (compact JSON, standard
    escapes), which cannot occur inside a JSON string, whose quotes are escaped. An
    id written any other way (a space after the colon, other escapes), or none,
    leaves the whole body hashed: the digest then merely differs from one reply to
    the next. Equal digests mean equal rows, never the
    reverse: the sweep uses it to skip the work on a page it has seen before
    (:mod:`watcher.poll.sweep`), and a different digest only costs that work.
    """
    return digest_without_id(content, body.get("requestId") if isinstance(body, dict) else None)


def digest_without_id(content: bytes, rid: Any) -> int:
    """:func:`reply_digest` given the envelope's ``requestId`` value as parsed."""
    if isinstance(rid, str) and rid:
        needle = b'"requestId":' + orjson.dumps(rid)
        at = content.find(needle)
        if at >= 0:
            view = memoryview(content)
            h = xxhash.xxh3_64(view[:at])
            h.update(view[at + len(needle) :])
            return h.intdigest() - _SIGNED
    return xxhash.xxh3_64_intdigest(content) - _SIGNED


_SIGNED = 1 << 63


_DICT_ONLY = {dict}


def header_request_id(headers: Mapping[str, str]) -> str | None:
    for name in ("x-gs-request-id", "x-request-id"):
        value = headers.get(name)
        if value:
            return value[:100]
    return None


def safe_summary(code: str | None) -> str:
    if code is None:
        return "no error code"
    return _SUMMARIES.get(code, "see Gainsight's error code list")


def error_desc(body: Any) -> str | None:
    """Gainsight's ``errorDesc`` fit for a message: redacted, one line, bounded."""
    desc = body.get("errorDesc") if isinstance(body, dict) else None
    if not isinstance(desc, str) or not desc.strip():
        return None
    text = "".join(ch if ch.isprintable() else " " for ch in desc).strip()
    text = redact(text)
    return text if len(text) <= DESC_LIMIT else text[: DESC_LIMIT - 1] + "…"


def describe_error(code: str | None, desc: str | None) -> str:
    """``CODE "desc"`` (or the safe summary when Gainsight gave no description)."""
    if desc:
        return f'{code or "no error code"} "{desc}"'
    return f"{code or 'no error code'}: {safe_summary(code)}"


def parse_json(content: bytes) -> Any:
    """The body parsed: msgspec (integers of any size kept exact, as the stdlib keeps
    them and as stored snapshots are read back; orjson would read one beyond 64 bits
    as a float), and the stdlib's reading where msgspec refuses what ``json`` accepts -
    the ``NaN``/``Infinity`` literals, numbers beyond a double (``1e400``), a lone
    surrogate escape - so odd records reach the poll's intake exactly as before.
    Raises ``ValueError`` or ``RecursionError`` for a body that is not JSON."""
    try:
        return _decode(content)
    except msgspec.DecodeError:
        return json.loads(content)


_decode = msgspec.json.Decoder().decode


def decode_json(content: bytes, *, what: str, request_id: str | None) -> Any:
    """Parse the body; anything that is not JSON is a :class:`MalformedResponseError`."""
    try:
        return parse_json(content)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedResponseError(
            f"{what}: reply is not valid JSON ({len(content)} bytes; truncated or not "
            "from Gainsight)",
            request_id=request_id,
        ) from exc


def envelope_request_id(body: Any, fallback: str | None) -> str | None:
    if isinstance(body, dict):
        rid = body.get("requestId")
        if isinstance(rid, str) and rid:
            return rid[:100]
    return fallback


def is_envelope(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("result"), bool)


def is_no_rows(body: Mapping[str, Any]) -> bool:
    """``result: false`` that means "no rows" rather than a failure."""
    code = body.get("errorCode")
    if isinstance(code, str) and code in NO_ROWS_CODES:
        return True
    desc = body.get("errorDesc")
    return isinstance(desc, str) and desc.strip().lower().startswith(_NO_DATA_TEXT)


def api_error(
    body: Mapping[str, Any], *, what: str, status: int, request_id: str | None
) -> ApiError:
    raw = body.get("errorCode")
    code = raw[:64] if isinstance(raw, str) and raw else None
    desc = error_desc(body)
    return ApiError(
        f"{what}: Gainsight answered {describe_error(code, desc)} (HTTP {status}, request id "
        f"{request_id or 'none'})",
        error_code=code,
        request_id=request_id,
        status=status,
        desc=desc,
    )


def read_records(body: Any, *, what: str, status: int, header_id: str | None = None) -> Reply:
    """Turn a decoded 2xx/4xx body into rows, "no rows", or an error.

    Raises :class:`ApiError` for ``result: false`` (other than "no rows") and
    :class:`MalformedResponseError` when the body is not the envelope.
    """
    request_id = envelope_request_id(body, header_id)
    if not is_envelope(body):
        raise MalformedResponseError(
            f"{what}: reply is JSON but not the Gainsight envelope (no boolean 'result')",
            request_id=request_id,
            status=status,
        )
    if body["result"] is False:
        if is_no_rows(body):
            return Reply([], request_id, "result-false")
        raise api_error(body, what=what, status=status, request_id=request_id)
    data = body.get("data")
    if data is None:
        return Reply([], request_id, "null-data")
    rows: Any
    if isinstance(data, list):
        rows = data
    elif isinstance(data, dict) and not data:
        return Reply([], request_id, "empty-data")
    elif isinstance(data, dict) and "records" in data:
        rows = data["records"]
        if rows is None:
            return Reply([], request_id, "null-records")
    else:
        raise MalformedResponseError(
            f"{what}: 'data' is neither a list nor an object with 'records'",
            request_id=request_id,
            status=status,
        )
    if not isinstance(rows, list) or (
        rows  # a page of plain dicts is checked in C; anything else record by record
        and set(map(type, rows)) != _DICT_ONLY
        and not all(isinstance(r, dict) for r in rows)
    ):
        raise MalformedResponseError(
            f"{what}: 'records' is not a list of objects", request_id=request_id, status=status
        )
    return Reply(rows, request_id, None if rows else "empty-list")
