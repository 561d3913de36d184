"""Load ``[rules] paths`` into a :class:`RuleSet`, checked against the config.

Every problem names the file, the rule, the key path as the admin wrote it, the bad
value and what to do, one line per problem; all problems of all files are collected
into one :class:`~watcher.errors.ConfigError`. A rule that can never match (a
condition no event of its ``sources`` and ``on`` can satisfy) is an error too; one
that can match only some of its sources or changes loads with a warning
(:attr:`RuleSet.warnings`, printed by ``watcher check``).
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from watcher.config import WatcherConfig
from watcher.errors import ConfigError
from watcher.rules.checks import HELD_FIELDS, never_matches
from watcher.rules.models import Condition, Digest, Rule, RuleFile, Throttle, written


@dataclass(frozen=True)
class RuleSet(Sequence[Rule]):
    """The loaded rules, in file order, with the file each came from."""

    rules: tuple[Rule, ...] = ()
    origins: Mapping[str, str] = field(default_factory=dict)
    #: source name -> its ``timezone`` (where a date-only due date's day lies)
    zones: Mapping[str, str] = field(default_factory=dict)
    #: rules that load but cannot match some of their sources or changes
    warnings: tuple[str, ...] = ()

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


def _keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _allowed(loc: Sequence[Any]) -> list[str]:
    """The keys allowed where an unknown key ``loc[-1]`` was written."""
    names = [p for p in loc[:-1] if isinstance(p, str)]
    if any(n in ("when", "any", "all", "not") for n in names):
        return _keys(Condition)
    if names[-1:] == ["throttle"]:
        return _keys(Throttle)
    if names[-1:] == ["digest"]:
        return _keys(Digest)
    return _keys(Rule) if names == ["rules"] else ["rules"]


_KINDS = {
    "int": "a number",
    "float": "a number",
    "string": "text",
    "bool": "true or false",
    "tuple": "a list",
    "list": "a list",
    "model": "a table",
    "dict": "a table",
    "model_attributes": "a table",
}


def _kind_of(error_type: str) -> str | None:
    for prefix, kind in _KINDS.items():
        if error_type.startswith(prefix + "_"):
            return kind
    return None


def _message(loc: Sequence[Any], errors: list[Any]) -> str:
    """One message for every pydantic error at one location."""
    first = errors[0]
    kind = str(first.get("type"))
    value = first.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed(loc)
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            return f"unknown key {key!r} (did you mean {close[0]}?)"
        return f"unknown key {key!r}; use one of {', '.join(allowed)} (see docs/rules.md)"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        expected = str(first.get("ctx", {}).get("expected", "")).replace("'", "")
        expected = expected.replace(" or ", ", ")
        return f"{written(value)} is not one of {expected}"
    if kind == "too_short":
        what = {"sources": "source", "on": "change", "sinks": "sink"}.get(str(loc[-1]), "entry")
        return f"is empty; list at least one {what}"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal"):
        ctx = first.get("ctx", {})
        bound = {"greater_than": "more than", "greater_than_equal": "at least"}.get(kind, "at most")
        limit = ctx.get("gt", ctx.get("ge", ctx.get("le")))
        shown = f"{limit:g}" if isinstance(limit, int | float) else limit
        return f"{written(value)} is out of range; it must be {bound} {shown}"
    if kind == "string_pattern_mismatch":
        return (
            f"{written(value)} is not a valid name; use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    if kind == "string_too_short":
        return "is empty; write a value"
    if kind == "string_too_long":
        return f"is too long; at most {first.get('ctx', {}).get('max_length')} characters"
    if kind == "value_error":
        return str(first.get("msg", "invalid")).removeprefix("Value error, ")
    kinds = [k for k in dict.fromkeys(_kind_of(str(e.get("type"))) for e in errors) if k]
    if kinds and all(_kind_of(str(e.get("type"))) for e in errors):
        expected = " or ".join(kinds)
        if isinstance(value, dict):
            return f"expected {expected}, not a table"
        return f"expected {expected}, not {written(value)}"
    msg = str(first.get("msg", "invalid"))
    return f"{msg} (got {written(value)})" if value is not None else msg


def _format(origin: str, raw: Any, exc: ValidationError) -> list[str]:
    """One line per problem: pydantic's several errors for one key (one per member of
    a union) become one line naming the key as written and the bad value."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for err in exc.errors(include_url=False, include_input=True):
        loc = list(err.get("loc", ()))
        # pydantic adds union-member tags (e.g. "str", "tuple[...]") to the path; drop them
        loc = [p for p in loc if isinstance(p, int) or not any(c in str(p) for c in "[|")]
        loc = [p for p in loc if p not in ("str", "int", "float", "bool", "function-after")]
        if err.get("type") == "literal_error" and loc and isinstance(loc[-1], int):
            loc = loc[:-1]  # name the list; the message names the value
        groups.setdefault(tuple(loc), []).append(err)
    lines = []
    for path, errors in groups.items():
        msg = _message(path, errors)
        if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
            where = f"{_rule_label(raw, path[1])}: {_loc(path[2:]) or '(rule)'}"
        else:
            where = _loc(path) or "(top level)"
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
    if set(rule.on) == {"delete_held"}:
        for fld in sorted(rule.fields() - set(HELD_FIELDS)):
            problems.append(
                f"{where}: when: field {fld!r}: delete_held events have no record; their "
                f"conditions read {', '.join(HELD_FIELDS)}"
            )
        return problems
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


def load_rules(
    config: WatcherConfig, *, base_dir: Path | None = None, also: Sequence[str] = ()
) -> RuleSet:
    """Read, validate and cross-check every rule file; raise ConfigError listing all problems.

    ``also`` are problems found elsewhere (the delivery layer's sink checks, see
    :func:`watcher.delivery.sinks.load_checked_rules`), reported in the same error.
    """
    base = base_dir if base_dir is not None else Path.cwd()
    problems: list[str] = []
    warnings: list[str] = []
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
        except RecursionError:
            problems.append(f"{origin}: values nested too deeply to read; flatten the file")
            continue
        try:
            parsed = RuleFile.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_format(origin, raw, exc))
            continue
        except RecursionError:
            problems.append(f"{origin}: values nested too deeply to check; flatten the file")
            continue
        for index, rule in enumerate(parsed.rules):
            if rule.name in origins:
                problems.append(
                    f"{origin}: rules[{index}] ({rule.name!r}): name: already used in "
                    f"{origins[rule.name]}; rule names must be unique, rename one"
                )
                continue
            where = f"{origin}: rules[{index}] ({rule.name!r})"
            refs = _check_refs(origin, index, rule, config)
            problems.extend(refs)
            if not refs:
                errors, notes = never_matches(rule, config)
                problems.extend(f"{where}: {line}" for line in errors)
                warnings.extend(f"{where}: {line}" for line in notes)
            origins[rule.name] = origin
            rules.append(rule)
    problems.extend(also)
    if problems:
        raise ConfigError("\n".join(problems))
    zones = {s.name: s.timezone for s in config.sources}
    return RuleSet(tuple(rules), origins, zones, tuple(warnings))
