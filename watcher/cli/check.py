"""``watcher check [--connect]``: validate config, secrets and rules; exit 0 or 2.

``--connect`` then sends, per source, one tiny request of each kind that source
really sends (see :mod:`watcher.gainsight.probe`) and prints a table per source;
exit 1 when any request failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.errors import SecretError, SourceError

if TYPE_CHECKING:
    from watcher.config import WatcherConfig


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "check",
        help="validate config and rules (exit 0 or 2); --connect also tries each source",
    )
    parser.add_argument(
        "--connect",
        action="store_true",
        help="also send each source's requests once (limit 1, its real select): a sweep "
        "page, the incremental filter, a key look-up, the delete read; exit 1 if any fails",
    )
    parser.set_defaults(handler=run)


def check_secrets(config: WatcherConfig, base_dir: Path) -> None:
    """Resolve every secret; collect all problems into one ConfigError."""
    from watcher.config import resolve_secret

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
    from watcher.config import load_config

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
    from watcher.delivery.sinks import load_checked_rules

    ruleset = load_checked_rules(config, base_dir=base_dir)
    for warning in ruleset.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return f", {len(ruleset)} rule(s)"


def _connect(config: WatcherConfig, base_dir: Path) -> int:
    from watcher.gainsight.connect import check_connection, probe_sources
    from watcher.gainsight.routes import path_of
    from watcher.logging import redact

    try:
        if not config.sources:
            message = check_connection(config, base_dir=base_dir)
            print(f"ok: connect: {message}")
            return 0
        results = probe_sources(config, base_dir=base_dir)
    except SourceError as exc:
        print(f"error: connect: {redact(str(exc))}", file=sys.stderr)
        return 1
    failed = 0
    for source in config.sources:
        probes = results.get(source.name, [])
        route = (
            "object from the tenant's metadata" if source.needs_object_lookup else path_of(source)
        )
        print(f"\nsource {source.name!r} ({source.kind}, {route})")
        width = max(len(p.route) for p in probes) if probes else 10
        print(f"  {'request':<13} {'route':<{width}}  result")
        for probe in probes:
            text = redact(probe.detail)
            if not probe.ok:
                failed += 1
                text = f"FAILED: {text}"
            print(f"  {probe.kind:<13} {probe.route:<{width}}  {text}")
            if not probe.ok and probe.advice:
                print(f"  {'':<13} {'':<{width}}  -> {redact(probe.advice)}")
        for probe in probes:
            if not probe.ok:
                print(
                    f"error: connect: source {source.name!r}: {probe.kind} ({probe.route}) "
                    f"failed; change {probe.setting or 'the source'}",
                    file=sys.stderr,
                )
    if failed:
        return 1
    print(f"\nok: connect: {config.gainsight.base_url}: every request of every source works")
    return 0
