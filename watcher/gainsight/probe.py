"""``watcher check --connect``: one tiny request of each kind a source really sends.

Per source, at most five calls, each with ``limit``/``pageSize`` 1 and the source's
real ``select``: the goals object look-up (a goal source without ``object``), a
sweep page, the incremental filter (when the source has ``incremental``), a key
look-up, and the delete read (when it has ``delete_log``). Each result names the
route, Gainsight's code and description on failure, and the setting to change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from watcher.config import SourceConfig
from watcher.errors import AuthError, SourceError
from watcher.gainsight.advice import advice_for
from watcher.gainsight.budget import Priority
from watcher.gainsight.client import KEY_SETTING, GainsightClient
from watcher.gainsight.deletes import (
    cta_deleted_listing,
    delete_log_read,
)
from watcher.gainsight.metadata import OBJECTS_PATH, find_goal_object
from watcher.gainsight.query import (
    CTA_DELETED_PATH,
    CTA_LIST_PATH,
    Direction,
    key_lookup,
    mda_object_of,
    modified_since,
    style_of,
)
from watcher.gainsight.routes import path_of

PROBE_KEY = "PROBE0000000000000000000000000000000"  # a key no tenant has


@dataclass(frozen=True)
class Probe:
    """One request of the connection check."""

    kind: str  # "goals object" | "sweep page" | "incremental" | "key look-up" | "delete read"
    route: str
    ok: bool
    detail: str  # "ok (1 row)", or Gainsight's code and description
    setting: str | None = None  # the setting to change when it failed
    advice: str | None = None  # what to do about it, in a sentence


async def _first(pages: AsyncIterator[Any]) -> Any:
    try:
        return await anext(pages, None)
    finally:
        await pages.aclose()  # type: ignore[attr-defined]  # async generators close


def _rows(page: Any) -> str:
    n = len(page.records) if page is not None else 0
    return f"ok ({n} row{'s' if n != 1 else ''})"


def _failure(source: SourceConfig, kind: str, route: str, exc: SourceError) -> Probe:
    if exc.desc:
        detail = f'{exc.error_code or "no error code"} "{exc.desc}"'
    elif isinstance(exc, AuthError):
        detail = f"{exc.error_code or 'HTTP ' + str(exc.status)}: the access key was rejected"
    else:
        detail = str(exc).removeprefix(f"source {source.name!r}: ")
    if exc.status and exc.desc:
        detail += f" (HTTP {exc.status})"
    advice = None if isinstance(exc, AuthError) else advice_for(source, exc)
    return Probe(kind, route, False, detail, _setting(source, kind, exc, advice), advice)


def _setting(source: SourceConfig, kind: str, exc: SourceError, advice: str | None) -> str:
    where = f"sources[{source.name!r}]"
    if isinstance(exc, AuthError):
        return KEY_SETTING
    text = advice or ""
    if f"{where}." in text:  # the advice names the setting
        return text[text.index(f"{where}.") :].split(" ", 1)[0].rstrip(";,")
    return {
        "goals object": f"{where}.object",
        "sweep page": f"{where}.select / object / api",
        "incremental": f"{where}.modified_field / incremental",
        "key look-up": f"{where}.key",
        "delete read": f"{where}.delete_log (remove it: full sweeps still find deletes)",
    }.get(kind, where)


async def probe_source(
    client: GainsightClient, source: SourceConfig, *, now: datetime
) -> list[Probe]:
    """Run the source's requests once each; never raises for a Gainsight failure."""
    out: list[Probe] = []
    if source.needs_object_lookup:
        try:
            name = await find_goal_object(client)
        except SourceError as exc:
            out.append(_failure(source, "goals object", f"GET {OBJECTS_PATH}", exc))
            return out
        out.append(Probe("goals object", f"GET {OBJECTS_PATH}", True, f"ok ({name})"))
        source = source.model_copy(update={"object": name})
    tiny = source.model_copy(update={"page_size": 1})
    route = f"POST {path_of(source)}"
    key = PROBE_KEY

    async def attempt(kind: str, path: str, run: Any) -> Any:
        try:
            page = await run
        except SourceError as exc:
            out.append(_failure(source, kind, path, exc))
            return None
        out.append(Probe(kind, path, True, _rows(page)))
        return page

    page = await attempt("sweep page", route, _first(client.iter_pages(tiny, max_rows=1)))
    if page is not None and page.records:
        found = page.records[0].get(source.key)
        if isinstance(found, str) and found:
            key = found
    if not out[-1].ok and out[-1].setting == KEY_SETTING:
        return out  # a rejected key fails every request alike
    if source.incremental is not None or source.poll_every is not None:
        since = now - timedelta(days=1)
        cond = modified_since(tiny, since, until=now + timedelta(days=1))
        order: dict[str, Direction] | None = None
        if style_of(tiny) == "mda":
            order = {source.modified_field: "asc", source.key: "asc"}
        pages = client.iter_pages(
            tiny, conditions=(cond,), order_by=order, priority=Priority.HIGH, max_rows=1
        )
        await attempt("incremental", route, _first(pages))
    conds, expression = key_lookup(tiny, [key])
    pages = client.iter_pages(
        tiny, conditions=conds, expression=expression, priority=Priority.HIGH, max_rows=1
    )
    await attempt("key look-up", route, _first(pages))
    if source.delete_log is not None or (source.poll_every is not None and source.has_delete_feed):
        await _probe_deletes(client, source, now, attempt)
    return out


async def _probe_deletes(
    client: GainsightClient, source: SourceConfig, now: datetime, attempt: Any
) -> None:
    path = path_of(source)
    if source.kind == "cta" and (source.path is None or path == CTA_LIST_PATH):
        listing = cta_deleted_listing(source).model_copy(update={"page_size": 1})
        pages = client.iter_pages(
            listing,
            select=(source.key, source.modified_field),
            path=CTA_DELETED_PATH,
            priority=Priority.HIGH,
            max_rows=1,
        )
        await attempt("delete read", f"POST {CTA_DELETED_PATH}", _first(pages))
        return
    obj = mda_object_of(path)
    if obj is None:
        return  # no delete feed: the config refuses delete_log with such a path
    log_source, conditions = delete_log_read(source, obj, now - timedelta(days=1))
    log_source = log_source.model_copy(update={"page_size": 1})
    pages = client.iter_pages(
        log_source,
        conditions=conditions,
        order_by={"DeletedOn": "asc"},
        priority=Priority.HIGH,
        max_rows=1,
    )
    await attempt("delete read", f"POST {path_of(log_source)}", _first(pages))


__all__ = ["Probe", "probe_source"]
