"""``watcher events list [--source S] [--type T] [--since T] [--limit N] [--json]``, ``show ID``.

Reads the event log. ``--json`` prints one CloudEvent per line, exactly as
delivered, in sequence order.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.errors import ConfigError

if TYPE_CHECKING:
    from watcher.store import Store


#: Format controls that reorder what a terminal shows (bidi overrides and isolates).
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _terminal_safe(text: str) -> str:
    """Gainsight text as the terminal should show it: control characters (ESC, C1,
    bidi overrides, lone surrogates) become visible escapes; our own newlines stay."""
    return "".join(
        ch
        if ch == "\n" or (unicodedata.category(ch) not in ("Cc", "Cs") and ch not in _BIDI)
        else ascii(ch)[1:-1]
        for ch in text
    )


def _write(text: str) -> None:
    """The one output of both commands."""
    sys.stdout.write(_terminal_safe(text))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("events", help="read the event log")
    cmds = parser.add_subparsers(dest="events_command", metavar="COMMAND")
    cmds.required = True
    ls = cmds.add_parser("list", help="list events in sequence order")
    ls.add_argument("--source", metavar="S", help="only this source")
    ls.add_argument(
        "--type", metavar="T", help="a full type (gainsight.company.updated) or a change (updated)"
    )
    ls.add_argument(
        "--since",
        metavar="TIME",
        help="ISO time (2026-11-23T16:00Z) or a duration back from now (2h, 3d)",
    )
    ls.add_argument(
        "--limit",
        metavar="N",
        type=_positive,
        default=None,
        help="at most N events: the first N after --since, else the last N "
        "(default 50; all with --json and no --limit)",
    )
    ls.add_argument("--json", action="store_true", help="one CloudEvent per line")
    ls.set_defaults(handler=run_list)
    show = cmds.add_parser("show", help="print one event (by id or sequence number)")
    show.add_argument("id", metavar="ID", help="the event id, or its sequence number")
    show.set_defaults(handler=run_show)


def _store(args: argparse.Namespace) -> Store:
    """Open the configured store; imported lazily so `watcher --help` starts fast."""
    from watcher.cli import config_path
    from watcher.config import load_config
    from watcher.store import Store
    from watcher.store.db import store_path

    path = Path(config_path(args))
    config = load_config(path)
    db = store_path(config, path.parent)
    if not db.exists():
        raise ConfigError(f"{db}: no store yet; run `watcher poll SOURCE` or `watcher run` first")
    return Store.open(db)


def _known_source(args: argparse.Namespace, store: Store) -> None:
    """``--source`` must be a configured source (or one the log still has events of)."""
    from watcher.cli import config_path
    from watcher.config import load_config

    names = [s.name for s in load_config(Path(config_path(args))).sources]
    if args.source in names or store.list_events(source=args.source, limit=1):
        return
    raise ConfigError(
        f"--source: no source named {args.source!r} (configured: {', '.join(names) or 'none'})"
    )


def run_list(args: argparse.Namespace) -> int:
    from watcher.dates import format_utc, parse_when

    since = None
    if args.since:
        try:
            since = format_utc(parse_when(args.since, datetime.now(UTC)))
        except ValueError as exc:
            raise ConfigError(f"--since: {exc}") from None
    limit = args.limit if args.limit is not None else (None if args.json else 50)
    store = _store(args)
    try:
        if args.source:
            _known_source(args, store)
        events = store.list_events(
            source=args.source, type=args.type, since=since, limit=limit, newest=since is None
        )
    finally:
        store.close()
    if args.json:
        for stored in events:
            _write(stored.body + "\n")
        return 0
    if not events:
        _write("no events\n")
        return 0
    from watcher.cli.poll import describe_event

    for stored in events:
        event = stored.cloudevent()
        line = f"{stored.time}  {stored.source:<12} {describe_event(event)}"
        _write(line.replace("\n", " ") + "\n")  # one line per event, whatever the data
    return 0


def run_show(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        stored = store.get_event(args.id)
    finally:
        store.close()
    if stored is None:
        print(f"error: no event with id or sequence {args.id!r}", file=sys.stderr)
        return 1
    _write(json.dumps(stored.cloudevent(), indent=2, ensure_ascii=False) + "\n")
    return 0
