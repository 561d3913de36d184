"""Every option of every command has help text; --config works after the subcommand."""

from __future__ import annotations

import argparse

from watcher.cli import build_parser


def _walk(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing.extend(_walk(sub, f"{prefix} {name}"))
            continue
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        if not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{prefix} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_of_every_command_has_help_text() -> None:
    assert _walk(build_parser(), "watcher") == []


def test_config_is_accepted_after_the_subcommand() -> None:
    parser = build_parser()
    assert parser.parse_args(["check", "--config", "x.toml"]).config == "x.toml"
    assert parser.parse_args(["--config", "y.toml", "check"]).config == "y.toml"
    nested = parser.parse_args(["events", "list", "--config", "z.toml"])
    assert nested.config == "z.toml"
