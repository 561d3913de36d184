"""Shared by the rules, deliveries, replay and pause commands: config, rules, database."""

from __future__ import annotations

import argparse
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from watcher.clock import SystemClock
from watcher.config import WatcherConfig, load_config
from watcher.delivery.sinks import load_checked_rules
from watcher.errors import ConfigError, StoreError
from watcher.rules.loader import RuleSet
from watcher.store.db import migrate, open_database
from watcher.store.outbox import Outbox


@dataclass(frozen=True)
class Context:
    config: WatcherConfig
    base_dir: Path
    rules: RuleSet

    @property
    def db_path(self) -> Path:
        from watcher.store.db import store_path

        return store_path(self.config, self.base_dir)


def load(args: argparse.Namespace) -> Context:
    from watcher.cli import config_path

    path = Path(config_path(args))
    config = load_config(path)
    base = path.parent
    return Context(config, base, load_checked_rules(config, base_dir=base))


def open_outbox(ctx: Context) -> Outbox:
    """Open (creating and migrating) the store for commands that write."""
    db = open_database(ctx.db_path)
    migrate(db, SystemClock().now)
    return Outbox(db)


def open_readonly(ctx: Context) -> Database:
    """Open the store without writing anything (``rules test --last``)."""
    if not ctx.db_path.exists():
        raise StoreError(f"store: {ctx.db_path} does not exist yet; run 'watcher run' first")
    try:
        conn = sqlite3.connect(f"file:{ctx.db_path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"store: cannot open {ctx.db_path} read-only: {exc}") from exc
    return Database(conn)


def check_name(ctx: Context, *, rule: str | None = None, sink: str | None = None) -> None:
    if rule is not None and ctx.rules.get(rule) is None:
        known = ", ".join(ctx.rules.names()) or "none"
        raise ConfigError(f"no rule named {rule!r} (loaded: {known})")
    if sink is not None and sink not in ctx.config.sinks:
        known = ", ".join(ctx.config.sinks) or "none"
        raise ConfigError(f"no sink named {sink!r} (configured: {known})")
