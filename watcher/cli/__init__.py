"""Command line: ``watcher [--config PATH] COMMAND ...``.

Each module in this package that defines ``register(subparsers)`` adds its
commands; a command's handler takes the parsed arguments and returns the exit
code. Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

from watcher import __version__
from watcher.errors import ConfigError, WatcherError

# Only what the parser needs is imported here: each command imports its own
# packages when it runs, so `watcher --help` and `watcher poll` stay quick to start.

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="watcher",
        description="Outbound change triggers for Gainsight: poll, diff, deliver.",
    )
    parser.add_argument("--version", action="version", version=f"watcher {__version__}")
    parser.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help="config file (default: $WATCHER_CONFIG or ./watcher.toml)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="least severe log line shown (default info)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    _accept_config_anywhere(sub)
    return parser


def _accept_config_anywhere(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``--config`` after the subcommand too (``watcher check --config x.toml``).

    The copy on each subcommand defaults to SUPPRESS, so it overrides the global
    option only when given.
    """
    for parser in sub.choices.values():
        if not any("--config" in a.option_strings for a in parser._actions):
            parser.add_argument(
                "--config",
                default=argparse.SUPPRESS,
                metavar="PATH",
                help="config file (default: $WATCHER_CONFIG or ./watcher.toml)",
            )
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_config_anywhere(action)


def config_path(args: argparse.Namespace) -> str:
    """The config file as an absolute path, so every error names files unambiguously
    (the config, its rules folder, the store) whatever directory the command ran in."""
    from watcher.config import default_config_path

    return os.path.abspath(Path(args.config or default_config_path()))


def main(argv: Sequence[str] | None = None) -> int:
    # Pydantic looks for plugins by reading the metadata of every installed package the
    # first time it builds a model: 60-80 ms of each command's start, for plugins that
    # would only watch watcher read its own config. Off unless the variable is set.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    parser = build_parser()
    args = parser.parse_args(argv)
    from watcher.logging import configure_logging, redact

    # Commands log to stderr so their stdout (tables, --json lines) stays clean;
    # `watcher run` reconfigures to stdout, where journald picks the lines up.
    configure_logging(level=args.log_level, stream=sys.stderr)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except WatcherError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `watcher discover | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return code
