"""``watcher run``: the daemon (schedules, polls, rules, deliveries, ``[http]``).

SIGTERM / SIGINT stop it cleanly (exit 0); SIGHUP reloads config and rules (a bad
reload is logged and the running version kept). One daemon per database: a second
one exits 1 with a clear message. Under systemd it speaks sd_notify.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watcher.config import WatcherConfig
    from watcher.daemon.runner import Daemon


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "run", help="the daemon: schedules, polls, rules, deliveries and the [http] server"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight polls and deliveries may take to finish "
        "(default 20; keep it below systemd's TimeoutStopSec)",
    )
    parser.add_argument(
        "--every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="run each source's incremental and delete-log polls every SECONDS instead "
        "of on their cron (cron has minute granularity; for demos, soaks and tests)",
    )
    parser.add_argument(
        "--max-polls",
        type=int,
        default=None,
        metavar="N",
        help="exit after N polls have finished (smoke tests)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from watcher.cli import config_path
    from watcher.cli.check import check_secrets
    from watcher.clock import SystemClock
    from watcher.config import load_config
    from watcher.daemon.lock import DaemonLock
    from watcher.daemon.wiring import mark_interrupted
    from watcher.logging import configure_logging, get_logger
    from watcher.store.db import store_path

    path = Path(config_path(args))
    config = load_config(path)
    base_dir = path.parent
    configure_logging(level=args.log_level)
    check_secrets(config, base_dir)
    clock = SystemClock()
    with DaemonLock(store_path(config, base_dir)):
        closed = mark_interrupted(config, base_dir, clock)
        if closed:
            get_logger("watcher.daemon").warning("poll.interrupted_closed", polls=closed)
        from watcher.poll.work import freeze_startup_heap

        freeze_startup_heap()
        return asyncio.run(
            serve(config, path, grace_s=args.grace, max_polls=args.max_polls, every_s=args.every)
        )


def build_daemon(
    config: WatcherConfig,
    path: Path,
    *,
    grace_s: float = 20.0,
    every_s: float | None = None,
) -> Daemon:
    """The daemon on the real parts (client, poll engine, rules, dispatcher)."""
    from watcher.clock import SystemClock
    from watcher.daemon.metrics import Metrics
    from watcher.daemon.runner import Daemon
    from watcher.daemon.sdnotify import Notifier
    from watcher.daemon.wiring import real_builder
    from watcher.store.db import store_path
    from watcher.store.view import StoreView

    clock = SystemClock()
    base_dir = path.parent
    view = StoreView(store_path(config, base_dir))
    metrics = Metrics(lambda: view.stats(clock.now()))
    return Daemon(
        config,
        real_builder(clock=clock, base_dir=base_dir, metrics=metrics),
        clock=clock,
        config_path=path,
        base_dir=base_dir,
        notifier=Notifier(os.environ),
        metrics=metrics,
        grace_s=grace_s,
        every_s=every_s,
    )


async def serve(
    config: WatcherConfig,
    path: Path,
    *,
    grace_s: float = 20.0,
    max_polls: int | None = None,
    every_s: float | None = None,
) -> int:
    """Run the daemon in this event loop until a signal stops it."""
    import asyncio

    daemon = build_daemon(config, path, grace_s=grace_s, every_s=every_s)
    daemon.install_signal_handlers(asyncio.get_running_loop())
    code = await daemon.run(max_polls=max_polls)
    sys.stdout.flush()
    return code
