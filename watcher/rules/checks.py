"""Rules that can never match (pure): conditions no event of a rule's sources and
changes could satisfy, found at load so that ``watcher check`` names them.

A condition can never hold when it needs what the event cannot have: an old value on a
``created`` event (``from``, crossings, percentages, ``was_null = false``), a new value
on a ``deleted`` one (``to``, crossings, percentages), a change of a field the source
ignores (``ignore_fields`` never appear in an updated event's changes), a record field
or any change at all in a ``delete_held`` event. A rule none of whose (source, change)
pairs can match is an error; a source or change of a rule that cannot is a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from watcher.config import SourceConfig, WatcherConfig
from watcher.rules.match import describe
from watcher.rules.models import NUMBER_OPERATORS, Condition, Rule, looks_numeric, operand, written

#: What a ``gainsight.watcher.delete_held`` event carries for conditions to read.
HELD_FIELDS = ("held", "total", "fraction", "max_delete_fraction", "sample_keys")


def _op_never(op: str, arg: Any, field: str, source: SourceConfig, change: str) -> str | None:
    """Why ``op`` can never hold for ``change`` events of ``source`` (None: it can)."""
    needs_change = op in ("from", "to", *NUMBER_OPERATORS) or (op == "changed" and arg)
    if change == "delete_held":
        if field not in HELD_FIELDS:
            return f"delete_held events carry only {', '.join(HELD_FIELDS)}"
        if needs_change or (op == "was_null" and not arg):
            return "nothing changes in a delete_held event"
        return None
    if field in source.ignore_fields and change == "updated" and needs_change:
        return (
            f"{field!r} is in ignore_fields of source {source.name!r}, so an updated event "
            "never reports it as changed; remove it from ignore_fields or drop the condition"
        )
    if change == "created" and (
        op in ("from", *NUMBER_OPERATORS) or (op == "was_null" and not arg)
    ):
        return "a created event has no old value"
    if change == "deleted" and op in ("to", *NUMBER_OPERATORS):
        return "a deleted event has no new value"
    return None


def _never(cond: Condition, source: SourceConfig, change: str) -> str | None:
    """Why ``cond`` can never hold for ``change`` events of ``source`` (None: it can)."""
    if cond.all is not None:
        for child in cond.all:
            why = _never(child, source, change)
            if why is not None:
                return why
        return None
    if cond.any is not None:
        reasons = [_never(child, source, change) for child in cond.any]
        return reasons[0] if all(reasons) else None
    if cond.not_ is not None or cond.field is None:
        return None
    for op in cond.operators():
        why = _op_never(op, operand(cond, op), cond.field, source, change)
        if why is not None:
            return f"{describe(cond)} can never hold: {why}"
    return None


def never_matches(rule: Rule, config: WatcherConfig) -> tuple[list[str], list[str]]:
    """(errors, warnings) for conditions that can never hold: an error when no event of
    the rule's sources and changes could match, a warning per source or change that
    cannot; plus a warning for quoted numbers compared with ``eq``/``in``... (text)."""
    sources = [s for s in config.sources if s.name in rule.sources]
    dead: dict[tuple[str, str], str] = {}
    for source in sources:
        for change in rule.on:
            for index, cond in enumerate(rule.when):
                why = _never(cond, source, change)
                if why is not None:
                    dead[(source.name, change)] = f"when[{index}]: {why}"
                    break
    errors: list[str] = []
    warnings: list[str] = []
    combos = [(s.name, c) for s in sources for c in rule.on]
    if combos and all(combo in dead for combo in combos):
        for reason in dict.fromkeys(dead.values()):
            errors.append(f"{reason}; as written the rule never matches")
        return errors, warnings
    explicit_on = "on" in rule.model_fields_set  # the default (all three) is not a choice
    for change in rule.on:
        if explicit_on and len(rule.on) > 1 and all((s.name, change) in dead for s in sources):
            reason = dead[(sources[0].name, change)]
            warnings.append(f"on: {change!r} never matches ({reason}); remove {change!r} from on")
    for source in sources:
        if len(sources) > 1 and all((source.name, c) in dead for c in rule.on):
            reason = dead[(source.name, rule.on[0])]
            warnings.append(
                f"sources: {source.name!r} never matches ({reason}); remove it from sources"
            )
    warnings.extend(_quoted_numbers(rule.when, "when"))
    return errors, warnings


def _quoted_numbers(conds: Sequence[Condition], path: str) -> list[str]:
    out = []
    for index, cond in enumerate(conds):
        here = f"{path}[{index}]"
        out.extend(_quoted_numbers(cond.any or (), f"{here}.any"))
        out.extend(_quoted_numbers(cond.all or (), f"{here}.all"))
        out.extend(_quoted_numbers((cond.not_,) if cond.not_ else (), f"{here}.not"))
        for op in ("eq", "ne", "in", "not_in", "from", "to"):
            arg = operand(cond, op)
            values = arg if isinstance(arg, tuple | list) else (arg,)
            quoted = [v for v in values if isinstance(v, str) and looks_numeric(v)]
            if quoted:
                out.append(
                    f"{here}.{op}: {written(quoted[0])} is text and matches only text, "
                    f"never the number {quoted[0]}; write it without quotes to match a number"
                )
    return out
