"""``watcher status [--json] [--config PATH ...]``: sources, rules, sinks, API budget, last
events - read from the store, whether or not the daemon runs (it says which).

With several ``--config`` paths (one per tenant) it prints one block each; with
``--json`` one JSON object per line, one per config. Exit 0, or 2 for a config error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "status", help="per source, rule and sink: polls, errors, outbox, pauses, API budget"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per config")
    parser.add_argument(
        "--config",
        dest="status_configs",
        action="append",
        default=None,
        metavar="PATH",
        help="a tenant's config; repeat for several tenants (default: the global --config)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from watcher.cli import config_path
    from watcher.clock import SystemClock
    from watcher.config import load_config
    from watcher.daemon.status import collect
    from watcher.delivery.sinks import load_checked_rules
    from watcher.logging import redact
    from watcher.store.db import store_path

    paths = [Path(p) for p in (args.status_configs or [config_path(args)])]
    loaded = []
    for path in paths:  # every config is checked before anything is printed
        config = load_config(path)
        names = [r.name for r in load_checked_rules(config, base_dir=path.parent)]
        loaded.append((path, config, names))
    now = SystemClock().now()
    for n, (path, config, rules) in enumerate(loaded):
        status = collect(
            config,
            db_path=store_path(config, path.parent),
            now=now,
            rules=rules,
            config_path=str(path),
        )
        if args.json:
            print(redact(json.dumps(status, ensure_ascii=False)))
        else:
            if n:
                print()
            print(redact(text(status)))
    return 0


def text(status: dict[str, Any]) -> str:
    """The status as a terminal block (pure)."""
    from watcher.daemon.status_page import NONE

    daemon = status["daemon"]
    running = (
        f"daemon running (pid {daemon['pid']})"
        if daemon.get("running") and daemon.get("pid")
        else "daemon running"
        if daemon.get("running")
        else "daemon not running"
    )
    lines = [
        f"== {status['tenant']}  ({status['config']})",
        f"{running}; store {status['store']}"
        + ("" if status["store_exists"] else " (not created yet: no poll has run)"),
        "",
        "sources:",
    ]
    for src in status["sources"]:
        last = src["last_poll"]
        poll = (
            f"last {last['mode']} {last['outcome']} at {last['finished_at'] or last['started_at']}"
            f" ({_secs(last['duration_s'])}, {last['records']} records, "
            f"{last['api_calls']} calls)"
            if last
            else "no poll yet"
        )
        nxt = src["next_poll"]
        lines.append(
            f"  {src['name']} ({src['kind']}): {src['records']} records; {poll}; next "
            + (f"{nxt['mode']} at {nxt['at']}" if nxt else NONE)
        )
        lines.append(
            f"    events {src['events_last_hour']} last hour, {src['events_last_day']} last "
            f"day; watermark {src['watermark'] or NONE}"
        )
        if src["last_error"]:
            err = src["last_error"]
            code = f" [{err['gainsight_code']}]" if err["gainsight_code"] else ""
            state = "FAILING" if src["failing"] else "last error"
            lines.append(f"    {state}{code} at {err['at']}: {err['error']}")
        if src["held_delete"]:
            held = src["held_delete"]
            lines.append(
                f"    mass delete HELD since {held['since']}: {held['deletes']} of "
                f"{held['of']} records"
            )
    lines.append("rules (last 24 h):")
    for rule in status["rules"]:
        paused = "  PAUSED" if rule["paused"] else ""
        lines.append(
            f"  {rule['name']}: {rule.get('matches_last_day', 0)} matches, "
            f"{rule.get('delivered_last_day', 0)} delivered, "
            f"{rule.get('suppressed_last_day', 0)} suppressed{paused}"
        )
    if not status["rules"]:
        lines.append("  none")
    lines.append("sinks (last 24 h):")
    for sink in status["sinks"]:
        paused = "  PAUSED" if sink["paused"] else ""
        lines.append(
            f"  {sink['name']} ({sink['type']}): {sink.get('delivered_last_day', 0)} delivered, "
            f"{sink.get('failing', 0)} failing, {sink.get('dead_last_day', 0)} dead; outbox "
            f"{sink.get('outbox_depth', 0)}, oldest {_secs(sink['oldest_pending_age_s'])}"
            f"{paused}"
        )
        if sink.get("last_error"):
            lines.append(f"    last error: {sink['last_error']}")
    if not status["sinks"]:
        lines.append("  none")
    api = status["api"]
    lines.append(
        f"API budget: {api.get('calls_this_minute', 0)}/{api['per_minute_limit']} calls this "
        f"minute, {api.get('calls_today', 0)}/{api['per_day_limit']} today (UTC), "
        f"{api.get('rate_limited_today', 0)} answered 429 today"
    )
    lines.append("last events:")
    for ev in status["last_events"]:
        changes = ", ".join(
            f"{f}: {v['old']!r} -> {v['new']!r}" for f, v in (ev["changes"] or {}).items()
        )
        who = ev["name"] or ev["key"]
        lines.append(
            f"  #{ev['sequence']} {ev['time']} {ev['source']} {ev['change']} {who}"
            + (f"  {changes}" if changes else "")
        )
    if not status["last_events"]:
        lines.append("  none yet")
    return "\n".join(lines)


def _secs(value: Any) -> str:
    from watcher.daemon.status_page import NONE

    return NONE if value is None else f"{float(value):.1f}s"
