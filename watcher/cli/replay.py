"""``watcher replay --since TIME [--rule R] [--sink S] [--new-ids]``: queue past events again.

Past events (``time`` at or after TIME) are matched against the current rules and
new pending deliveries are queued. The events keep their ids, and a webhook gets the
same ``webhook-id`` as the first time (Standard Webhooks' idempotency key: a receiver
that dedupes on it treats the replay as the resend it is). ``--new-ids`` gives each
replayed event a new ``webhook-id`` (the body is unchanged), for receivers that
should take a deliberate replay.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("replay", help="queue past events again")
    parser.add_argument("--since", required=True, metavar="TIME", help="ISO time or '2h', '3d'")
    parser.add_argument("--rule", help="only this rule (even if disabled)")
    parser.add_argument("--sink", help="only this sink")
    parser.add_argument(
        "--new-ids",
        action="store_true",
        help="send each replayed event with a new webhook-id, so receivers that drop "
        "repeated ids take it (default: the original id, a replay is a resend)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import uuid

    from watcher.cli._outbox import check_name, load, open_outbox
    from watcher.clock import SystemClock
    from watcher.core.events import order_key
    from watcher.dates import format_utc, parse_when
    from watcher.errors import ConfigError
    from watcher.rules.match import rule_matches
    from watcher.store.events import events_since

    ctx = load(args)
    check_name(ctx, rule=args.rule, sink=args.sink)
    now = SystemClock().now()
    try:
        since = parse_when(args.since, now)
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from None
    rules = [r for r in ctx.rules if (r.name == args.rule if args.rule else r.enabled)]
    outbox = open_outbox(ctx)
    events = queued = 0
    for sequence, event_id, body in events_since(outbox.conn, format_utc(since)):
        event = json.loads(body)
        routes = [
            (rule.name, sink)
            for rule in rules
            if rule_matches(rule, event, ctx.rules.zones)
            for sink in rule.sinks
            if args.sink is None or sink == args.sink
        ]
        if not routes:
            continue
        outbox.queue(
            event_sequence=sequence,
            event_id=event_id,
            order_key=order_key(event),
            routes=routes,
            now=now,
            tag="replay",
            message_id=f"replay-{uuid.uuid4()}" if args.new_ids else None,
        )
        events += 1
        queued += len(routes)
    ids = "new webhook-ids" if args.new_ids else "their original webhook-ids"
    print(
        f"replay: queued {queued} deliveries for {events} event(s) since {format_utc(since)}, "
        f"with {ids}"
    )
    return 0
