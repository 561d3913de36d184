"""``watcher check [--connect]``: validate config, secrets and rules; exit 0 or 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from watcher.config import WatcherConfig, load_config, resolve_secret
from watcher.errors import SecretError, SourceError
from watcher.logging import redact


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("check", help="validate config and rules; exit 0 or 2")
    parser.add_argument("--connect", action="store_true", help="also make one cheap Gainsight call")
    parser.set_defaults(handler=run)


def check_secrets(config: WatcherConfig, base_dir: Path) -> None:
    """Resolve every secret; collect all problems into one ConfigError."""
    problems = []
    for ref in config.secret_refs():
        try:
            resolve_secret(ref, base_dir=base_dir)
        except SecretError as exc:
            problems.append(str(exc))
    if problems:
        raise SecretError("\n".join(problems))


def run(args: argparse.Namespace) -> int:
    from watcher.cli import config_path

    path = Path(config_path(args))
    config = load_config(path)
    check_secrets(config, path.parent)
    _check_sinks(config, path.parent)
    rules_summary = _check_rules(config, path.parent)
    print(
        f"ok: {path}: {len(config.sources)} source(s), {len(config.sinks)} sink(s){rules_summary}"
    )
    if args.connect:
        return _connect(config, path.parent)
    return 0


def _check_sinks(config: WatcherConfig, base_dir: Path) -> None:
    if not config.sinks:
        return
    from watcher.delivery.sinks import check_sinks

    check_sinks(config, base_dir=base_dir)


def _check_rules(config: WatcherConfig, base_dir: Path) -> str:
    from watcher.rules.loader import load_rules

    ruleset = load_rules(config, base_dir=base_dir)
    for warning in ruleset.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return f", {len(ruleset)} rule(s)"


def _connect(config: WatcherConfig, base_dir: Path) -> int:
    from watcher.gainsight.connect import check_connection

    try:
        message = check_connection(config, base_dir=base_dir)
    except SourceError as exc:
        print(f"error: connect: {redact(str(exc))}", file=sys.stderr)
        return 2
    print(f"ok: connect: {message}")
    return 0
