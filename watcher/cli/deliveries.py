"""``watcher deliveries list [--status S] [--sink S]`` / ``deliveries retry (ID | --dead)``."""

from __future__ import annotations

import argparse

# The outbox's states (watcher.store.outbox.STATUSES; a test keeps them in step),
# spelled here so building the parser imports no store code.
STATUSES = ("pending", "delivered", "dead", "suppressed")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("deliveries", help="inspect and retry deliveries")
    dsub = parser.add_subparsers(dest="deliveries_command", metavar="ACTION")
    dsub.required = True
    lister = dsub.add_parser("list", help="list deliveries, newest first")
    lister.add_argument("--status", choices=STATUSES, help="only deliveries in this state")
    lister.add_argument("--sink", metavar="NAME", help="only deliveries to this sink")
    lister.add_argument(
        "--limit", type=int, default=50, metavar="N", help="at most N rows (default 50)"
    )
    lister.set_defaults(handler=run_list)
    retry = dsub.add_parser(
        "retry", help="queue a delivery (or every dead one) again; it is never throttled"
    )
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", help="delivery id")
    target.add_argument("--dead", action="store_true", help="every dead delivery")
    retry.add_argument("--sink", help="with --dead: only this sink")
    retry.set_defaults(handler=run_retry)


def run_list(args: argparse.Namespace) -> int:
    from watcher.cli._outbox import check_name, load, open_outbox

    ctx = load(args)
    if args.sink:
        check_name(ctx, sink=args.sink)
    outbox = open_outbox(ctx)
    rows = outbox.list_deliveries(status=args.status, sink=args.sink, limit=args.limit)
    if not rows:
        print("no deliveries")
        return 0
    print(f"{'ID':<34} {'SEQ':>6} {'STATUS':<10} {'TRY':>3} {'RULE':<20} {'SINK':<12} ERROR")
    for r in rows:
        error = (r.last_error or "")[:80]
        print(
            f"{r.id:<34} {r.event_sequence:>6} {r.status:<10} {r.attempts:>3} "
            f"{r.rule:<20} {r.sink:<12} {error}"
        )
    return 0


def run_retry(args: argparse.Namespace) -> int:
    from watcher.cli._outbox import check_name, load, open_outbox
    from watcher.clock import SystemClock

    ctx = load(args)
    outbox = open_outbox(ctx)
    now = SystemClock().now()
    if args.dead:
        if args.sink:
            check_name(ctx, sink=args.sink)
        count = outbox.retry_dead(now, sink=args.sink)
        print(f"queued {count} dead deliver{'y' if count == 1 else 'ies'} again")
        return 0
    if not outbox.retry(args.id, now):
        print(f"error: no delivery with id {args.id!r}; see 'watcher deliveries list'")
        return 1
    print(f"queued delivery {args.id} again (an explicit retry: sent whatever the throttle says)")
    return 0
