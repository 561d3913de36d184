"""``watcher rules list`` / ``watcher rules test (--event FILE | --last N)``.

``rules test`` has no side effects: it reads the event file or the store (read-only),
matches, and prints the exact payload each sink would get, and for each rule of the
event's source that does not match, the first thing that did not hold. A hand-written
event is matched exactly as the daemon would match it (a missing ``time`` is taken
as now, and said). Throttle and digest are decided at delivery time and are not
applied here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from watcher.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("rules", help="show rules; dry-run matching and rendering")
    rsub = parser.add_subparsers(dest="rules_command", metavar="ACTION")
    rsub.required = True
    lister = rsub.add_parser("list", help="list the loaded rules")
    lister.set_defaults(handler=run_list)
    tester = rsub.add_parser("test", help="show which rules match and what each sink would get")
    group = tester.add_mutually_exclusive_group(required=True)
    group.add_argument("--event", metavar="FILE", help="a CloudEvent JSON file ('-' for stdin)")
    group.add_argument("--last", type=int, metavar="N", help="the last N stored events")
    tester.set_defaults(handler=run_test)


def run_list(args: argparse.Namespace) -> int:
    from watcher.cli._outbox import load

    ctx = load(args)
    if not ctx.rules:
        print("no rules loaded (check [rules] paths)")
        return 0
    paused = _paused_rules(ctx)
    for rule in ctx.rules:
        flags = [] if rule.enabled else ["disabled"]
        if rule.name in paused:
            flags.append("PAUSED")
        if rule.throttle:
            t = rule.throttle
            flags.append(f"throttle {t.max}/{t.per}/{t.window}")
        if rule.digest:
            flags.append(f"digest {rule.digest.window}")
        print(
            f"{rule.name:<24} {','.join(rule.sources):<14} on={','.join(rule.on):<24} "
            f"-> {','.join(rule.sinks)}" + (f"  [{'; '.join(flags)}]" if flags else "")
        )
        if rule.description:
            print(f"    {rule.description}")
    return 0


def _paused_rules(ctx: Any) -> frozenset[str]:
    """Rules paused in the store, read-only; none when there is no store yet."""
    from watcher.cli._outbox import open_readonly
    from watcher.errors import StoreError
    from watcher.store.outbox import Outbox

    if not ctx.db_path.exists():
        return frozenset()
    try:
        db = open_readonly(ctx)
        try:
            return Outbox(db).pauses().rules
        finally:
            db.conn.close()
    except StoreError:
        return frozenset()


def _read_events(args: argparse.Namespace, ctx: Any) -> list[dict[str, Any]]:
    if args.event is not None:
        try:
            text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text()
            value = json.loads(text)
        except OSError as exc:
            raise ConfigError(f"--event {args.event}: cannot read ({exc.strerror})") from None
        except ValueError as exc:
            raise ConfigError(f"--event {args.event}: not JSON ({exc})") from None
        events = value if isinstance(value, list) else [value]
        if not all(isinstance(e, dict) for e in events):
            raise ConfigError(f"--event {args.event}: expected a CloudEvent JSON object")
        return events
    if args.last < 1:
        raise ConfigError("--last must be at least 1")
    from watcher.cli._outbox import open_readonly
    from watcher.store.events import last_events

    db = open_readonly(ctx)
    try:
        return [json.loads(body) for _, _, body in last_events(db.conn, args.last)]
    finally:
        db.conn.close()


def run_test(args: argparse.Namespace) -> int:
    from watcher.cli._outbox import load
    from watcher.clock import SystemClock
    from watcher.dates import format_utc
    from watcher.delivery.base import Item
    from watcher.delivery.sinks import build_preview_sinks
    from watcher.rules.match import matching_rules, why_not

    ctx = load(args)
    events = _read_events(args, ctx)
    clock = SystemClock()
    sinks = build_preview_sinks(ctx.config, clock=clock)
    for raw in events:
        event = raw if isinstance(raw.get("time"), str) else {**raw, "time": None}
        raw_data = event.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        seq = f" (sequence {event['sequence']})" if "sequence" in event else ""
        where = f"{data.get('source')}:{data.get('key', event.get('subject'))}"
        print(f"event {event.get('id')} {event.get('type')} {where}{seq}")
        if event["time"] is None:
            event["time"] = format_utc(clock.now())
            print(f"  (no time in the event: taken as now, {event['time']})")
        matched = matching_rules(ctx.rules, event)
        for rule in ctx.rules:
            if rule in matched or data.get("source") not in rule.sources:
                continue
            why = "disabled" if not rule.enabled else why_not(rule, event, ctx.rules.zones)
            print(f"  rule {rule.name} does not match: {why}")
        if not matched:
            print("  no rule matches")
            continue
        body = json.dumps(event, ensure_ascii=False)
        for rule in matched:
            extra = []
            if rule.throttle:
                t = rule.throttle
                extra.append(f"throttle {t.max}/{t.per}/{t.window}")
            if rule.digest:
                extra.append(f"digest {rule.digest.window}")
            note = f" ({', '.join(extra)}: applied when delivering)" if extra else ""
            print(f"  rule {rule.name} matches{note}")
            item = Item.from_body("preview", rule.name, body, rule)
            for sink_name in rule.sinks:
                preview = sinks[sink_name].preview([item])
                print(f"    -> {sink_name} ({preview.type}):")
                for payload in preview.payloads:
                    text = json.dumps(payload, indent=2, ensure_ascii=False)
                    print("\n".join("       " + line for line in text.splitlines()))
    return 0
