"""``watcher pause [--rule R | --sink S]`` / ``watcher resume ...``: the kill switch.

Persisted in the store: a paused rule's or sink's deliveries wait (nothing is
dropped) and go out after ``resume``. Without an option, lists what is paused.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for command, helptext in (
        ("pause", "pause a rule or sink (deliveries wait)"),
        ("resume", "resume a paused rule or sink"),
    ):
        parser = sub.add_parser(command, help=helptext)
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--rule", metavar="NAME", help="a rule, by name")
        target.add_argument("--sink", metavar="NAME", help="a sink, by name")
        if command == "pause":
            parser.add_argument(
                "--reason",
                default="paused by operator",
                help="why (kept with the pause, shown where pauses are listed)",
            )
        parser.set_defaults(handler=run, pause_command=command)


def run(args: argparse.Namespace) -> int:
    from watcher.cli._outbox import check_name, load, open_outbox
    from watcher.clock import SystemClock

    ctx = load(args)
    outbox = open_outbox(ctx)
    if args.rule is None and args.sink is None:
        paused = outbox.list_pauses()
        if not paused:
            print("nothing is paused")
        for kind, name, at, reason in paused:
            print(f"{kind} {name}: paused at {at} ({reason or 'no reason given'})")
        return 0
    kind, name = ("rule", args.rule) if args.rule is not None else ("sink", args.sink)
    if args.pause_command == "pause":
        check_name(ctx, rule=args.rule, sink=args.sink)
        if outbox.pause(kind, name, reason=args.reason, now=SystemClock().now()):
            print(
                f"paused {kind} {name}: its deliveries wait until 'watcher resume --{kind} {name}'"
            )
        else:
            print(f"{kind} {name} was already paused")
        return 0
    if outbox.resume(kind, name):
        print(f"resumed {kind} {name}: waiting deliveries go out on the next dispatch")
    else:
        print(f"{kind} {name} was not paused")
    return 0
