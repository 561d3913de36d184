"""Validation errors as an admin reads them: the key path, the bad value, what is allowed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from watcher.config.models import (
    GainsightConfig,
    HttpConfig,
    RulesConfig,
    SourceConfig,
    StoreConfig,
    WatcherConfig,
)
from watcher.config.sinks import (
    CommandSinkConfig,
    PythonSinkConfig,
    SlackSinkConfig,
    WebhookSinkConfig,
)


def _plain_choices(expected: str) -> str:
    """``"'a', 'b' or 'c'"`` -> ``"a, b, c"``."""
    return expected.replace(" or ", ", ").replace("'", "")


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word.lower(), [k.lower() for k in known], n=1, cutoff=0.6)
    if not close:
        return ""
    original = next(k for k in known if k.lower() == close[0])
    return f" (did you mean {original}?)"


def explain_error(err: Mapping[str, Any], known: Iterable[str] = ()) -> str:
    """One pydantic error as an admin reads it: the bad value and what is allowed.

    Only values the admin wrote are echoed (config and rule files hold no secrets:
    those are given as ``*_env`` / ``*_file``), cut to 60 characters.
    """
    kind = str(err.get("type", ""))
    value = err.get("input")
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    ctx = err.get("ctx") or {}
    field = str(err["loc"][-1]) if err.get("loc") else "value"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        hint = _did_you_mean(field, list(known))
        return f"unknown key{hint or '; check the spelling against the reference in README.md'}"
    if kind == "missing":
        return "is required"
    if kind in ("literal_error", "enum"):
        return f"{shown} is not one of {_plain_choices(str(ctx.get('expected', '')))}"
    if kind == "too_short":
        return "must not be empty: give at least one entry"
    if kind in ("tuple_type", "list_type", "set_type"):
        example = f"[{shown}]" if isinstance(value, str) else "[...]"
        return f"must be a list, e.g. {example} (got {shown})"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{shown} is not a whole number"
    if kind in ("float_parsing", "float_type"):
        return f"{shown} is not a number"
    if kind in ("bool_parsing", "bool_type"):
        return f"{shown} is not true or false"
    if kind in ("string_type",):
        return f"must be text in quotes (got {shown})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a table (got {shown})"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{shown}: must be {msg.removeprefix('Input should be ')}"
    if kind == "string_pattern_mismatch":
        return (
            f"{shown} is not allowed here (letters, digits, '_', '.', '-'; "
            "start with a letter or digit)"
        )
    if kind == "string_too_long":
        return f"{shown} is too long ({msg.removeprefix('String should have ')})"
    if kind == "union_tag_invalid":
        tags = _plain_choices(str(ctx.get("expected_tags", "")))
        return f"{ctx.get('tag', shown)!r} is not one of {tags}"
    return msg


def _section_keys(loc: Sequence[Any]) -> list[str]:
    """The keys allowed where ``loc`` points (for did-you-mean)."""
    parent = [p for p in loc[:-1] if not isinstance(p, int)]
    if not parent:
        return list(WatcherConfig.model_fields)
    head = parent[0]
    if head == "sources":
        return list(SourceConfig.model_fields)
    if head == "sinks":
        names: set[str] = set()
        for model in (WebhookSinkConfig, SlackSinkConfig, CommandSinkConfig, PythonSinkConfig):
            names.update(model.model_fields)
        return sorted(names)
    sections: dict[str, type[BaseModel]] = {
        "gainsight": GainsightConfig,
        "store": StoreConfig,
        "http": HttpConfig,
        "rules": RulesConfig,
    }
    section = sections.get(str(head))
    return list(section.model_fields) if section else []


def format_validation_error(
    origin: str, exc: ValidationError, data: Mapping[str, Any] | None = None
) -> str:
    """One line per problem: ``origin: key.path: message``, keys as the admin wrote them
    (``sources['ctas'].fullsweep``), the bad value and what is allowed."""
    lines: list[str] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False, include_input=True):
        loc = tuple(err.get("loc", ()))
        path = _loc(loc, data)
        field = _field_of(path)
        if field in seen:
            continue  # one line per setting: the first problem is the one to fix
        seen.add(field)
        msg = explain_error(err, _section_keys(loc))
        lines.append(f"{origin}: {path or '(top level)'}: {msg}")
    return "\n".join(lines)


def _field_of(path: str) -> str:
    """``sources['x'].on[0]`` -> ``sources['x'].on`` (a setting, not its items)."""
    while path.endswith("]") and "[" in path:
        head, _, tail = path.rpartition("[")
        if tail[:-1].isdigit():
            path = head
        else:
            break
    return path


def _loc(loc: Sequence[Any], data: Mapping[str, Any] | None = None) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            if out == "sources" and i == 1 and data is not None:
                out += f"[{_source_name(data, part)}]"
            else:
                out += f"[{part}]"
        elif i == 2 and loc[0] == "sinks" and _is_sink_tag(data, loc[1], part):
            continue  # discriminated-union tag pydantic inserts; not a key the user wrote
        else:
            out += ("." if out else "") + str(part)
    return out


def _is_sink_tag(data: Mapping[str, Any] | None, name: Any, part: Any) -> bool:
    """``part`` is the ``type`` of sink ``name`` (pydantic puts it in the error path)."""
    sinks = data.get("sinks") if data is not None else None
    sink = sinks.get(name) if isinstance(sinks, Mapping) else None
    if isinstance(sink, Mapping) and "type" in sink:
        return bool(sink.get("type") == part)
    return str(part) in ("webhook", "slack", "command", "python", "nats")


def _source_name(data: Mapping[str, Any], index: int) -> str:
    sources = data.get("sources")
    if isinstance(sources, list) and index < len(sources) and isinstance(sources[index], Mapping):
        name = sources[index].get("name")
        if isinstance(name, str) and name:
            return repr(name)
    return str(index)
