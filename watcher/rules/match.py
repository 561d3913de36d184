"""The pure matcher: CloudEvent dict -> matching rules -> (rule, sink) routes.

No I/O, clock or logging. Semantics of a field condition on ``field``:

- A change is a transition between two states of a record: ``old`` is the field in
  ``data.before``, ``new`` the field in ``data.after``. A ``created`` event goes from
  nothing to the record (``old`` is null for every field), a ``deleted`` event from
  the record to nothing (``new`` is null). For an ``updated`` event with a
  ``data.changes`` map, that map says which fields changed and supplies their
  ``old``/``new``.
- ``changed = true``: the field is in ``data.changes`` (updated events), or it has a
  value in the record created (deleted); ``changed = false`` is its negation. Hand-
  written events without a ``changes`` map are read the same way (a field changed
  when ``old`` and ``new`` differ), so ``watcher rules test`` agrees with the daemon.
- ``from`` / ``to``: the field changed and ``old`` (``new``) equals the operand, or
  is one of them when the operand is a list. Both given: that exact transition. So
  ``to = "Will Churn"`` also matches a record *created* in that stage.
- ``value`` (what ``eq``, ``ne``, ``in``, ``not_in``, ``gt``/``gte``/``lt``/``lte``,
  ``contains``, ``is_null`` and ``overdue`` test) is ``new``, or ``old`` for a
  deleted event: the record as it is now, or as it was when it went away.
- ``is_null = true``: the value is missing, ``null`` or ``""``; ``was_null = true``:
  ``old`` is (so ``{ was_null = true, is_null = false }`` is "was empty, now set").
- ``crosses_below = t``: ``old >= t`` and ``new < t``; ``crosses_above = t``:
  ``old < t`` and ``new >= t``; both sides must be numbers (a null is on neither side)
  and the field must have changed (an ignored field never crosses).
- ``increased_by_pct = p``: ``old`` and ``new`` are numbers, ``old != 0`` and
  ``(new - old) / |old| * 100 >= p``; ``decreased_by_pct`` likewise downwards. Worked
  out in decimal on the numbers as written (1000.30 -> 900.27 is exactly 10%).
- ``overdue = true``: the value is a date already past at the event's ``time``. A
  date-only value (Gainsight date fields: midnight UTC) is due for the whole of that
  day in the source's ``timezone`` and overdue from the next local midnight.
  ``overdue = false``: the value is a date not yet past. A value that is not a date
  is neither.
- One coercion rule for every comparison: a value compares only with an operand of
  its own kind - numbers with numbers (``1 == 1.0``, exactly), text with text, dates
  with dates (as instants, whatever ISO form the value has), booleans with booleans.
  Text never turns into a number or back; a pair of different kinds is not equal and
  has no order (``ne``/``not_in`` hold, ``gt``... do not). Text compares
  case-sensitively unless the condition says ``ignore_case = true``.
  A condition never raises, whatever the event holds.
- ``gainsight.watcher.delete_held`` events (``on = ["delete_held"]``) have no record:
  a field condition reads the event's own data (``held``, ``total``, ``fraction``).

All conditions of a rule's ``when`` must hold (an empty ``when`` matches every event
of the rule's ``sources`` and ``on``); ``any`` holds when one child holds, ``all``
when every child holds, ``not`` when its child does not.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Context, Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watcher.dates import parse_iso
from watcher.errors import ConfigError
from watcher.rules.models import Condition, Rule, operand

_MISSING = object()
_DECIMAL = Context(prec=80)  # exact for any two doubles' shortest decimal forms
Router = Callable[[Mapping[str, Any]], Sequence[tuple[str, str]]]


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (not isinstance(value, float) or math.isfinite(value))
    )


def _blank(value: Any) -> bool:
    return value is None or value == ""


def _as_date(value: Any) -> datetime | None:
    return parse_iso(value) if isinstance(value, str) else None


def _fold(text: str, ignore_case: bool) -> str:
    return text.casefold() if ignore_case else text


def values_equal(value: Any, expected: Any, ignore_case: bool = False) -> bool:
    """Equality under the one coercion rule: same kind, or not equal."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    if _is_number(expected) or _is_number(value):
        return _is_number(value) and _is_number(expected) and value == expected
    if isinstance(expected, str) and isinstance(value, str):
        day = _as_date(expected)
        if day is not None:
            return _as_date(value) == day
        return _fold(value, ignore_case) == _fold(expected, ignore_case)
    return False


def _one_of(value: Any, expected: Any, ignore_case: bool = False) -> bool:
    if isinstance(expected, list | tuple):
        return any(values_equal(value, e, ignore_case) for e in expected)
    return values_equal(value, expected, ignore_case)


def _compare(value: Any, expected: Any, ignore_case: bool = False) -> int | None:
    """-1/0/1 for a value and an operand of the same kind, else None."""
    if _is_number(value) and _is_number(expected):
        return int(value > expected) - int(value < expected)
    if isinstance(value, str) and isinstance(expected, str):
        day = _as_date(expected)
        if day is not None:
            seen = _as_date(value)
            return None if seen is None else (seen > day) - (seen < day)
        a, b = _fold(value, ignore_case), _fold(expected, ignore_case)
        return (a > b) - (a < b)
    return None


def _pct_reached(old: Any, new: Any, limit: Any, *, up: bool) -> bool:
    """``new`` is at least ``limit`` percent above (below) ``old``, in exact decimal."""
    if not (_is_number(old) and _is_number(new) and _is_number(limit)) or old == 0:
        return False
    o, n, p = Decimal(repr(old)), Decimal(repr(new)), Decimal(repr(limit))
    moved = _DECIMAL.subtract(n, o) if up else _DECIMAL.subtract(o, n)
    return _DECIMAL.multiply(moved, Decimal(100)) >= _DECIMAL.multiply(p, abs(o))


def change_of(event: Mapping[str, Any]) -> str | None:
    """``data.change``, or for a hand-written event without it the type's last part."""
    data = event_data(event)
    change = data.get("change")
    if isinstance(change, str):
        return change
    kind = event.get("type")
    return kind.rsplit(".", 1)[-1] if isinstance(kind, str) and "." in kind else None


class FieldView:
    """``old``/``new``/``value``/``changed`` of one field in one event's data."""

    __slots__ = ("changed", "new", "old", "value")

    def __init__(self, data: Mapping[str, Any], field: str, change: str | None = None) -> None:
        change = change if change is not None else data.get("change")
        if change == "delete_held":  # no record: the event's own figures
            self.old, self.new, self.changed = None, data.get(field), False
            self.value = self.new
            return
        before = data.get("before")
        after = data.get("after")
        before = before if isinstance(before, Mapping) else None
        after = after if isinstance(after, Mapping) else None
        old: Any = before.get(field) if before is not None else None
        new: Any = after.get(field) if after is not None else None
        deleted = change == "deleted" or (after is None and before is not None)
        created = change == "created" or (before is None and after is not None)
        changes = data.get("changes")
        if isinstance(changes, Mapping) and not (created or deleted):
            entry = changes.get(field, _MISSING)
            self.changed = entry is not _MISSING
            if isinstance(entry, Mapping):
                old = entry.get("old", old)
                new = entry.get("new", new)
        else:  # created, deleted, or a hand-written update without a changes map
            if created:
                old = None
            if deleted:
                new = None
            self.changed = not (
                (_blank(old) and _blank(new))
                or (type(old) is type(new) and bool(old == new))
                or (_is_number(old) and _is_number(new) and old == new)
            )
        self.old = old
        self.new = new
        self.value = old if deleted else new


def _overdue(value: Any, event_time: str | None, zone: tzinfo) -> bool | None:
    """True/False for a date value (past at ``event_time`` or not); None for anything else."""
    due = _as_date(value)
    now = _as_date(event_time)
    if due is None or now is None:
        return None
    if (due.hour, due.minute, due.second, due.microsecond) == (0, 0, 0, 0):
        # a date-only due date: due all that day where the source is, late the day after
        return now.astimezone(zone).date() > due.date()
    return due < now


def _field_op(
    op: str, arg: Any, view: FieldView, event_time: str | None, *, zone: tzinfo, fold: bool
) -> bool:
    value = view.value
    if op == "changed":
        return view.changed is bool(arg)
    if op == "from":
        return view.changed and _one_of(view.old, arg, fold)
    if op == "to":
        return view.changed and _one_of(view.new, arg, fold)
    if op == "eq":
        return values_equal(value, arg, fold)
    if op == "ne":
        return not values_equal(value, arg, fold)
    if op == "in":
        return _one_of(value, arg, fold)
    if op == "not_in":
        return not _one_of(value, arg, fold)
    if op in ("gt", "gte", "lt", "lte"):
        cmp = _compare(value, arg, fold)
        if cmp is None:
            return False
        return {"gt": cmp > 0, "gte": cmp >= 0, "lt": cmp < 0, "lte": cmp <= 0}[op]
    if op == "contains":
        if isinstance(value, str) and isinstance(arg, str):
            return _fold(arg, fold) in _fold(value, fold)
        if isinstance(value, list | tuple):
            return any(values_equal(v, arg, fold) for v in value)
        return False
    if op == "is_null":
        return _blank(value) is bool(arg)
    if op == "was_null":
        return _blank(view.old) is bool(arg)
    if op in ("crosses_below", "crosses_above"):
        if not (view.changed and _is_number(view.old) and _is_number(view.new)):
            return False
        if op == "crosses_below":
            return bool(view.old >= arg > view.new)
        return bool(view.old < arg <= view.new)
    if op in ("increased_by_pct", "decreased_by_pct"):
        return view.changed and _pct_reached(view.old, view.new, arg, up=op == "increased_by_pct")
    if op == "overdue":
        past = _overdue(value, event_time, zone)
        return past is not None and past is bool(arg)
    raise AssertionError(f"unknown operator {op}")


def condition_holds(
    cond: Condition,
    data: Mapping[str, Any],
    event_time: str | None = None,
    zone: tzinfo = UTC,
    change: str | None = None,
) -> bool:
    """Does ``cond`` hold for an event's ``data`` (``event_time``: the event's ``time``;
    ``zone``: the time zone of the event's source, for date-only due dates)?"""
    return _failure(cond, data, event_time, zone, change) is None


def _failure(
    cond: Condition, data: Mapping[str, Any], when: str | None, zone: tzinfo, change: str | None
) -> str | None:
    """None when ``cond`` holds, else what did not hold, in the rule file's words."""
    if cond.any is not None:
        if any(_failure(c, data, when, zone, change) is None for c in cond.any):
            return None
        return f"any: none of its {len(cond.any)} conditions holds"
    if cond.all is not None:
        for index, child in enumerate(cond.all):
            why = _failure(child, data, when, zone, change)
            if why is not None:
                return f"all[{index}]: {why}"
        return None
    if cond.not_ is not None:
        if _failure(cond.not_, data, when, zone, change) is None:
            return f"not: {describe(cond.not_)} holds"
        return None
    if cond.field is None:  # the rule models refuse a condition without a field
        raise ConfigError(f"condition {describe(cond)}: names no field")
    view = FieldView(data, cond.field, change)
    for op in cond.operators():
        arg = operand(cond, op)
        if not _field_op(op, arg, view, when, zone=zone, fold=cond.ignore_case):
            return f"{cond.field} {op} = {_shown(arg)} does not hold ({_seen(cond.field, view)})"
    return None


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _seen(field: str, view: FieldView) -> str:
    if view.changed:
        return f"{field}: {_shown(view.old)} -> {_shown(view.new)}"
    return f"{field} is {_shown(view.value)}, unchanged"


def describe(cond: Condition) -> str:
    """A condition in the rule file's own words: ``Arr decreased_by_pct = 10``."""
    if cond.any is not None:
        return "any [" + ", ".join(describe(c) for c in cond.any) + "]"
    if cond.all is not None:
        return "all [" + ", ".join(describe(c) for c in cond.all) + "]"
    if cond.not_ is not None:
        return f"not {describe(cond.not_)}"
    ops = ", ".join(f"{op} = {_shown(operand(cond, op))}" for op in cond.operators())
    return f"{cond.field} {ops}"


@lru_cache(maxsize=256)
def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _zones(rules: Iterable[Rule]) -> Mapping[str, str]:
    """Source -> time zone name, carried by a loaded :class:`~watcher.rules.loader.RuleSet`."""
    zones = getattr(rules, "zones", None)
    return zones if isinstance(zones, Mapping) else {}


def _time(event: Mapping[str, Any]) -> str | None:
    value = event.get("time")
    return value if isinstance(value, str) else None


def event_data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = event.get("data")
    return data if isinstance(data, Mapping) else {}


def why_not(
    rule: Rule, event: Mapping[str, Any], zones: Mapping[str, str] | None = None
) -> str | None:
    """None when ``rule`` matches ``event`` (ignoring ``enabled``), else the first thing
    that did not: the source, the change, or which ``when`` condition failed and why."""
    data = event_data(event)
    source, change = data.get("source"), change_of(event)
    if source not in rule.sources:
        return f"source {_shown(source)} is not in sources {_shown(rule.sources)}"
    if change not in rule.on:
        return f"change {_shown(change)} is not in on {_shown(rule.on)}"
    zone = _zone((zones or {}).get(str(source), "UTC"))
    when = _time(event)
    for index, cond in enumerate(rule.when):
        why = _failure(cond, data, when, zone, change)
        if why is not None:
            return f"when[{index}]: {why}"
    return None


def rule_matches(
    rule: Rule, event: Mapping[str, Any], zones: Mapping[str, str] | None = None
) -> bool:
    """Source, change and every ``when`` condition (ignores ``enabled``)."""
    return why_not(rule, event, zones) is None


def matching_rules(
    rules: Iterable[Rule], event: Mapping[str, Any], zones: Mapping[str, str] | None = None
) -> list[Rule]:
    """The enabled rules that match ``event``, in the order given."""
    zones = _zones(rules) if zones is None else zones
    return [r for r in rules if r.enabled and rule_matches(r, event, zones)]


def build_router(rules: Iterable[Rule], zones: Mapping[str, str] | None = None) -> Router:
    """A store router: event -> ``[(rule, sink), ...]`` for each enabled matching rule.

    Rules are indexed by (source, change) once, so routing an event only evaluates the
    rules that can match it. Paused rules and sinks are still routed: their
    deliveries wait in the outbox until resumed (nothing is dropped). ``zones``
    (source -> time zone; a loaded RuleSet carries them) places date-only due dates.
    """
    zones = _zones(rules) if zones is None else zones
    index: dict[tuple[str, str], list[Rule]] = defaultdict(list)
    for rule in rules:
        if not rule.enabled:
            continue
        for source in rule.sources:
            for change in rule.on:
                index[(source, change)].append(rule)

    def route(event: Mapping[str, Any]) -> list[tuple[str, str]]:
        data = event_data(event)
        source, change = str(data.get("source")), change_of(event)
        candidates = index.get((source, str(change)), ())
        if not candidates:
            return []
        when = _time(event)
        zone = _zone(zones.get(source, "UTC"))
        return [
            (rule.name, sink)
            for rule in candidates
            if all(_failure(c, data, when, zone, change) is None for c in rule.when)
            for sink in rule.sinks
        ]

    return route
