"""Load ``[rules] paths`` into a :class:`RuleSet`, checked against the config.

Every problem names the file, the rule, the key path and what to do; all problems
of all files are collected into one :class:`~watcher.errors.ConfigError`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from watcher.config import WatcherConfig, explain_error
from watcher.errors import ConfigError
from watcher.rules.models import Rule, RuleFile


@dataclass(frozen=True)
class RuleSet(Sequence[Rule]):
    """The loaded rules, in file order, with the file each came from."""

    rules: tuple[Rule, ...] = ()
    origins: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __getitem__(self, index: int) -> Rule:  # type: ignore[override]  # int only
        return self.rules[index]

    def get(self, name: str) -> Rule | None:
        for rule in self.rules:
            if rule.name == name:
                return rule
        return None

    def names(self) -> list[str]:
        return [r.name for r in self.rules]


def rule_files(config: WatcherConfig, base_dir: Path) -> list[Path]:
    """The ``*.toml`` files named by ``[rules] paths`` (folders are read sorted)."""
    files: list[Path] = []
    explicit = "rules" in config.model_fields_set
    for entry in config.rules.paths:
        path = Path(entry)
        if not path.is_absolute():
            path = base_dir / path
        if path.is_dir():
            files.extend(sorted(p for p in path.glob("*.toml") if p.is_file()))
        elif path.is_file():
            files.append(path)
        elif explicit:
            raise ConfigError(
                f"[rules] paths: {entry!r} does not exist (looked at {path}); "
                "create it or fix the path in watcher.toml"
            )
    return files


def _loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = {"from_": "from", "in_": "in", "not_": "not"}.get(str(part), str(part))
            out += ("." if out else "") + name
    return out


def _rule_label(raw: Any, index: int) -> str:
    name = None
    if isinstance(raw, Mapping):
        rules = raw.get("rules")
        if isinstance(rules, list) and index < len(rules) and isinstance(rules[index], Mapping):
            name = rules[index].get("name")
    return f"rules[{index}] ({name!r})" if isinstance(name, str) else f"rules[{index}]"


def _format(origin: str, raw: Any, exc: ValidationError) -> list[str]:
    lines = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False, include_input=True):
        loc = list(err.get("loc", ()))
        # pydantic adds union-member tags (e.g. "str", "tuple[...]") to the path; drop them
        loc = [p for p in loc if isinstance(p, int) or not any(c in str(p) for c in "[|")]
        loc = [p for p in loc if p not in ("str", "int", "float", "bool")]
        msg = explain_error({**err, "loc": tuple(loc)})
        if err.get("type") == "extra_forbidden":
            msg = "unknown key; check the spelling against docs/rules.md"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            where = f"{_rule_label(raw, loc[1])}: {_loc(loc[2:]) or '(rule)'}"
        else:
            where = _loc(loc) or "(top level)"
        setting = re.sub(r"(\[\d+\])+$", "", where)
        if setting in seen:
            continue  # one line per setting (a union reports each member's complaint)
        seen.add(setting)
        lines.append(f"{origin}: {where}: {msg}")
    return lines


def _check_refs(origin: str, index: int, rule: Rule, config: WatcherConfig) -> list[str]:
    problems = []
    where = f"{origin}: rules[{index}] ({rule.name!r})"
    sources = {s.name: s for s in config.sources}
    for i, name in enumerate(rule.sources):
        if name not in sources:
            known = ", ".join(sources) or "none"
            problems.append(
                f"{where}: sources[{i}]: no source named {name!r} in the config "
                f"(configured: {known}); add a [[sources]] entry or fix the name"
            )
    for i, name in enumerate(rule.sinks):
        if name not in config.sinks:
            known = ", ".join(config.sinks) or "none"
            problems.append(
                f"{where}: sinks[{i}]: no sink named {name!r} in the config "
                f"(configured: {known}); add [sinks.{name}] or fix the name"
            )
    for name in rule.sources:
        source = sources.get(name)
        if source is None or not source.select:
            continue
        for fld in sorted(rule.fields()):
            if fld not in source.select and fld != source.key:
                problems.append(
                    f"{where}: when: field {fld!r} is not selected by source {name!r}; "
                    f"add it to that source's select or fix the field name"
                )
    return problems


def load_rules(config: WatcherConfig, *, base_dir: Path | None = None) -> RuleSet:
    """Read, validate and cross-check every rule file; raise ConfigError listing all problems."""
    base = base_dir if base_dir is not None else Path.cwd()
    problems: list[str] = []
    rules: list[Rule] = []
    origins: dict[str, str] = {}
    for path in rule_files(config, base):
        origin = str(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(f"{origin}: cannot read rule file ({exc.strerror}); check permissions")
            continue
        except UnicodeDecodeError:
            problems.append(f"{origin}: not UTF-8 text; save the file as UTF-8")
            continue
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{origin}: invalid TOML: {exc}; fix the syntax")
            continue
        try:
            parsed = RuleFile.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_format(origin, raw, exc))
            continue
        for index, rule in enumerate(parsed.rules):
            if rule.name in origins:
                problems.append(
                    f"{origin}: rules[{index}] ({rule.name!r}): name: already used in "
                    f"{origins[rule.name]}; rule names must be unique, rename one"
                )
                continue
            problems.extend(_check_refs(origin, index, rule, config))
            origins[rule.name] = origin
            rules.append(rule)
    problems.extend(sink_problems(config))
    if problems:
        raise ConfigError("\n".join(problems))
    return RuleSet(tuple(rules), origins)


def sink_problems(config: WatcherConfig) -> list[str]:
    """Sink settings only usable at delivery time, checked now so ``watcher check`` sees
    them: Slack link-template placeholders and Python sink callables."""
    from watcher.config import PythonSinkConfig, SlackSinkConfig
    from watcher.delivery.render import check_link_template
    from watcher.delivery.sinks.python import import_callable

    problems = []
    for name, sink in config.sinks.items():
        if isinstance(sink, SlackSinkConfig) and sink.link_template:
            try:
                check_link_template(sink.link_template)
            except ValueError as exc:
                problems.append(f"config: sinks.{name}.link_template: {exc}")
        elif isinstance(sink, PythonSinkConfig):
            try:
                import_callable(sink.callable, f"sinks.{name}.callable")
            except ConfigError as exc:
                problems.append(f"config: {exc}")
    return problems
