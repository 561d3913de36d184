"""``watcher poll SOURCE [--full | --incremental | --delete-log] [--dry-run] ...``.

One poll now, with a one-screen summary; a progress line on a terminal only.
Events are routed through the rules like the daemon does, so their deliveries
wait in the outbox for ``watcher run``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from watcher.errors import ConfigError

if TYPE_CHECKING:
    from watcher.config import SourceConfig, WatcherConfig
    from watcher.rules.match import Router


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("poll", help="poll one source now and print what changed")
    parser.add_argument("source", metavar="SOURCE", help="a source name from watcher.toml")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="read every record: creates, updates and deletes (default)",
    )
    mode.add_argument(
        "--incremental",
        dest="mode",
        action="store_const",
        const="incremental",
        help="read records modified since the watermark less the overlap",
    )
    mode.add_argument(
        "--delete-log",
        dest="mode",
        action="store_const",
        const="delete_log",
        help="read Gainsight's delete log since the last read",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="compare and report, but store nothing and emit no event",
    )
    parser.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="apply deletes even above max_delete_fraction (a held sweep)",
    )
    parser.set_defaults(handler=run, mode=None)


def max_level(a: str, b: str) -> str:
    order = ["debug", "info", "warning", "error"]
    return a if order.index(a) >= order.index(b) else b


def find_source(config: WatcherConfig, name: str) -> SourceConfig:
    for source in config.sources:
        if source.name == name:
            return source
    names = ", ".join(s.name for s in config.sources) or "none configured"
    raise ConfigError(f"unknown source {name!r}; the config has: {names}")


def _router(config: WatcherConfig, base_dir: Path) -> Router:
    from watcher.delivery.sinks import load_checked_rules
    from watcher.rules.match import build_router

    return build_router(load_checked_rules(config, base_dir=base_dir))


def run(args: argparse.Namespace) -> int:
    import asyncio

    from watcher.cli import config_path
    from watcher.config import load_config
    from watcher.logging import configure_logging

    path = Path(config_path(args))
    config = load_config(path)
    source = find_source(config, args.source)
    base_dir = path.parent
    mode = args.mode or "full"
    if args.allow_mass_delete and mode != "full":
        raise ConfigError("--allow-mass-delete applies to a full sweep; add --full")
    if (
        mode == "delete_log"
        and source.delete_log is None
        and source.poll_every is None
        and not args.dry_run
    ):
        print(f"note: source {source.name!r} has no delete_log schedule", file=sys.stderr)
    # The summary says what poll.finished would; log lines stay out of the way
    # unless they warn (a held delete) or debugging was asked for. On a terminal the
    # summary, the retry line and the one error line say it all: no log lines.
    floor = "error" if sys.stderr.isatty() else "warning"
    level = "debug" if args.log_level == "debug" else max_level(args.log_level, floor)
    configure_logging(level=level, stream=sys.stderr)
    router = _router(config, base_dir)
    from watcher.poll.work import freeze_startup_heap

    freeze_startup_heap()
    result = asyncio.run(
        _poll(
            config=config,
            source=source,
            mode=mode,
            base_dir=base_dir,
            router=router,
            dry_run=args.dry_run,
            allow_mass_delete=args.allow_mass_delete,
        )
    )
    print_summary(result, sys.stdout)
    return 0


async def _poll(
    *,
    config: WatcherConfig,
    source: SourceConfig,
    mode: str,
    base_dir: Path,
    router: Router,
    dry_run: bool,
    allow_mass_delete: bool,
) -> Any:
    from watcher.clock import SystemClock
    from watcher.gainsight import open_client
    from watcher.poll import Poller
    from watcher.store import Store
    from watcher.store.db import store_path

    clock = SystemClock()
    store = Store.open(store_path(config, base_dir), clock=clock)
    progress = _Progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        async with open_client(config, clock=clock, base_dir=base_dir) as client:
            if progress is not None:
                client.on_retry = progress.note
            poller = Poller(store, client, host=config.gainsight.host, clock=clock, matcher=router)
            try:
                return await poller.poll(
                    source,
                    mode,  # type: ignore[arg-type]  # argparse gives one of the Mode strings
                    trigger="manual",
                    dry_run=dry_run,
                    allow_mass_delete=allow_mass_delete,
                    progress=progress,
                )
            finally:
                if progress is not None:
                    progress.done()
    finally:
        store.close()


class _Progress:
    """A one-line progress display, redrawn in place (terminals only)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, result: Any) -> None:
        self.stream.write(
            f"\r{result.source}: page {result.pages}, {result.records:,} records, "
            f"{result.created + result.updated:,} changed "
        )
        self.stream.flush()

    def note(self, text: str) -> None:
        """A retry in progress: ``retrying (2/6) in 3s: HTTP 500...`` in place."""
        self.stream.write(f"\r\033[K{text}")
        self.stream.flush()

    def done(self) -> None:
        self.stream.write("\r\033[K")
        self.stream.flush()


def print_summary(result: Any, out: TextIO) -> None:
    """The one-screen summary of a poll."""
    title = f"{result.source}: {result.mode} poll {result.outcome}"
    if result.baseline:
        title += " (baseline)"
    if result.dry_run:
        title += " - dry run, nothing stored"
    lines = [
        title,
        f"  poll id    {result.poll_id}",
        f"  read       {result.records:,} records in {result.pages} pages, "
        f"{result.api_calls} API calls, {result.elapsed_s:.1f}s",
        f"  created    {result.created:,}{_baseline_note(result)}",
        f"  updated    {result.updated:,}",
        f"  deleted    {result.deleted:,}",
    ]
    if result.settled:
        lines.append(
            f"  settled    {result.settled:,} of {result.pages} pages: the same reply and "
            "stored records as at the last sweep, not compared again"
        )
    if result.touched:
        lines.append(f"  refreshed  {result.touched:,} (no reported field changed)")
    if result.reselected:
        fields = [f"+{f}" for f in result.fields_added] + [f"-{f}" for f in result.fields_removed]
        lines.append(
            f"  select     {result.reselected:,} snapshots retaken with the edited select "
            f"({', '.join(fields)}); no events for those fields"
        )
    if result.skipped:
        lines.append(
            f"  skipped    {result.skipped:,} records without a usable key or unreadable "
            "(warnings name page and row)"
        )
    if result.duplicates:
        lines.append(
            f"  duplicates {result.duplicates:,} extra copies of keys read twice; one copy kept"
        )
    if result.future:
        lines.append(
            f"  future     {result.future:,} records modified later than now; "
            "the watermark ignores them"
        )
    if result.missing:
        lines.append(
            f"  missing    {result.missing:,} not seen by paging; "
            f"{result.reappeared:,} found again by key"
        )
    if result.held:
        reason = result.held_reason or "the deletes exceed max_delete_fraction"
        lines.append(f"  HELD       {result.held:,} deletes: {reason}; nothing deleted.")
        lines.append(
            f"             apply with: watcher poll {result.source} --full --allow-mass-delete"
        )
    shown = [e for e in result.events if e.get("data", {}).get("change") != "delete_held"]
    if shown:
        lines.append("  events:")
        for event in shown[:10]:
            lines.append("    " + describe_event(event))
        if len(shown) > 10 or result.created + result.updated + result.deleted > len(shown):
            lines.append("    ... see `watcher events list`")
    out.write("\n".join(lines) + "\n")


def _baseline_note(result: Any) -> str:
    if not result.baseline or not result.created:
        return ""
    emitted = any(e.get("data", {}).get("change") == "created" for e in result.events)
    return "" if emitted else "  (baseline: stored silently, no events)"


def describe_event(event: Mapping[str, Any]) -> str:
    """``#12 updated 1P02... Arr: 100000 -> 90000, Stage: ...`` (one line)."""
    data = event.get("data") or {}
    change = data.get("change", event.get("type", ""))
    head = f"#{event.get('sequence', '?')} {change:<8} {event.get('subject', '')}"
    changes = data.get("changes") or {}
    if changes:
        parts = [
            f"{name}: {_short(c.get('old'))} -> {_short(c.get('new'))}"
            for name, c in changes.items()
        ]
        text = ", ".join(parts)
        return f"{head}  {text[:160]}{'...' if len(text) > 160 else ''}"
    after = data.get("after") or data.get("before") or {}
    name = after.get("Name") if isinstance(after, dict) else None
    return f"{head}  {name}" if name else head


def _short(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
