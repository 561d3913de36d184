"""``watcher run`` with a sub-minute poll interval, for the crash soak.

Cron has minute granularity, so - exactly like ``watcher demo --interval`` - this
runs the daemon with ``every_s``: each source's incremental and delete-log polls
every ``--every`` seconds instead of on their cron. Everything else is what
``watcher run`` does: the daemon lock, closing polls a killed predecessor left
``running``, the real client, poll engine, rules and dispatcher, SIGTERM handling.

    python -m watcher.reliability.fastrun --config watcher.toml --every 0.5

(An adapter kept here because ``watcher run`` has no interval option; with a
``watcher run --every SECONDS`` flag the soak could run the real command.)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from watcher.errors import ConfigError, StoreLockedError, WatcherError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m watcher.reliability.fastrun")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--every", type=float, default=0.5, metavar="SECONDS")
    parser.add_argument("--grace", type=float, default=5.0, metavar="SECONDS")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StoreLockedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except WatcherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from watcher.cli.check import check_secrets
    from watcher.cli.run import build_daemon
    from watcher.clock import SystemClock
    from watcher.config import load_config
    from watcher.daemon.lock import DaemonLock
    from watcher.daemon.wiring import mark_interrupted, store_path
    from watcher.logging import configure_logging, get_logger

    path: Path = args.config
    config = load_config(path)
    configure_logging(level=args.log_level)
    check_secrets(config, path.parent)
    with DaemonLock(store_path(config, path.parent)):
        closed = mark_interrupted(config, path.parent, SystemClock())
        if closed:
            get_logger("watcher.daemon").warning("poll.interrupted_closed", polls=closed)

        async def serve() -> int:
            daemon = build_daemon(config, path, grace_s=args.grace, every_s=args.every)
            daemon.install_signal_handlers(asyncio.get_running_loop())
            return await daemon.run()

        return asyncio.run(serve())


if __name__ == "__main__":
    raise SystemExit(main())
