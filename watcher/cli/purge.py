"""``watcher purge [--dry-run]``: apply the ``[store] retain_*`` settings now.

The daemon does the same once a day; this is for a first clean-up, or a host that
runs ``watcher poll`` from cron instead of the daemon.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("purge", help="delete what the retention settings no longer keep")
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted; change nothing"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from watcher.cli import config_path
    from watcher.clock import SystemClock
    from watcher.config import load_config
    from watcher.store.db import store_path
    from watcher.store.retention import purge_file

    path = Path(config_path(args))
    config = load_config(path)
    db = store_path(config, path.parent)
    result = purge_file(db, config.store, SystemClock().now(), dry_run=args.dry_run)
    store = config.store
    verb = "would delete" if result.dry_run else "deleted"
    print(
        f"{verb}: {result.events} event(s) older than {store.retain_events}, "
        f"{result.delivered} delivered delivery(ies) older than {store.retain_delivered}, "
        f"{result.dead} dead delivery(ies) older than {store.retain_dead}, "
        f"{result.polls} poll(s) older than {store.retain_polls}"
    )
    if not result.dry_run:
        print(f"space given back: {result.freed_bytes} bytes")
    return 0
