"""What ``watcher status`` and the status page show: the config joined with the store.

:func:`collect` reads only (the store read-only, the daemon lock without taking it),
so it works whether or not the daemon runs and says which. :func:`assemble` is the
pure part: config + store figures + now -> one JSON-ready dict, the shape of
``GET /v1/status`` and ``watcher status --json``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from watcher.config import WatcherConfig
from watcher.daemon.lock import holder
from watcher.daemon.schedule import MODE_PRIORITY, jobs_for, reschedule
from watcher.dates import format_utc, parse_iso
from watcher.store.status import StoreFigures, read_figures


def collect(
    config: WatcherConfig,
    *,
    db_path: Path,
    now: datetime,
    rules: list[str],
    config_path: str | None = None,
    serving_pid: int | None = None,
) -> dict[str, Any]:
    """The status of the tenant ``config`` describes, as of ``now``.

    ``serving_pid``: the daemon itself asks (its page), so it runs whatever the lock says.
    """
    figures = read_figures(
        db_path, sources=[s.name for s in config.sources], rules=rules, sinks=config.sinks, now=now
    )
    pid = serving_pid if serving_pid is not None else holder(db_path)
    return assemble(
        config,
        figures,
        now=now,
        rules=rules,
        daemon={"running": pid is not None, "pid": pid if pid and pid > 0 else None},
        store=str(db_path),
        config_path=config_path,
    )


def assemble(
    config: WatcherConfig,
    figures: StoreFigures,
    *,
    now: datetime,
    rules: list[str],
    daemon: dict[str, Any],
    store: str,
    config_path: str | None = None,
) -> dict[str, Any]:
    """Pure: the status dict from the config and the store's figures."""
    last_starts = {key: _when(value) for key, value in figures.schedule.items()}
    due = reschedule(jobs_for(config), last_starts, now)
    sources = []
    for src in config.sources:
        fig = figures.sources.get(src.name, {})
        mine = sorted(
            ((when, job.mode) for job, when in due.items() if job.source == src.name),
            key=lambda t: (t[0], MODE_PRIORITY[t[1]]),
        )
        nxt = {"at": format_utc(mine[0][0]), "mode": mine[0][1]} if mine else None
        last = fig.get("last_poll")
        sources.append(
            {
                "name": src.name,
                "kind": src.kind if src.kind != "object" else f"object {src.object_name}",
                "records": fig.get("records", 0),
                "last_poll": _poll(last),
                "next_poll": nxt,
                "watermark": fig.get("watermark"),
                "events_last_hour": fig.get("events_last_hour", 0),
                "events_last_day": fig.get("events_last_day", 0),
                "events_per_hour": fig.get("events_per_hour", [0] * 24),
                "last_error": fig.get("last_error"),
                "failing": bool(last and last.get("outcome") == "failed"),
                "held_delete": fig.get("held_delete"),
            }
        )
    rule_rows = []
    for name in rules:
        fig = figures.rules.get(name, {})
        pause = figures.pauses.get(("rule", name))
        rule_rows.append({"name": name, **fig, "paused": pause is not None, "pause": pause})
    sink_rows = []
    for name, cfg in config.sinks.items():
        fig = dict(figures.sinks.get(name, {}))
        oldest = fig.pop("oldest_pending", None)
        age = None
        if oldest:
            age = max(0.0, round((now - _when(str(oldest))).total_seconds(), 1))
        pause = figures.pauses.get(("sink", name))
        sink_rows.append(
            {
                "name": name,
                "type": cfg.type,
                **fig,
                "oldest_pending_age_s": age,
                "paused": pause is not None,
                "pause": pause,
            }
        )
    gs = config.gainsight
    api = {
        **figures.api,
        "per_minute_limit": gs.requests_per_minute,
        "per_day_limit": gs.requests_per_day,
    }
    return {
        "tenant": gs.host,
        "config": config_path,
        "store": store,
        "store_exists": figures.exists,
        "generated_at": format_utc(now),
        "daemon": daemon,
        "sources": sources,
        "rules": rule_rows,
        "sinks": sink_rows,
        "api": api,
        "last_events": figures.last_events,
    }


def _poll(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    duration = None
    if row.get("finished_at") and row.get("started_at"):
        delta = _when(str(row["finished_at"])) - _when(str(row["started_at"]))
        duration = round(delta.total_seconds(), 3)
    return {
        "mode": row.get("mode"),
        "outcome": row.get("outcome"),
        "started_at": row.get("started_at"),
        "finished_at": row.get("finished_at"),
        "duration_s": duration,
        "records": row.get("records"),
        "api_calls": row.get("api_calls"),
        "created": row.get("created"),
        "updated": row.get("updated"),
        "deleted": row.get("deleted"),
        "error": row.get("error"),
    }


def _when(text: str) -> datetime:
    """A time the store wrote (ISO-8601 UTC)."""
    value = parse_iso(text)
    return value if value is not None else datetime.fromisoformat(text)
