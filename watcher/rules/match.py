"""The pure matcher: CloudEvent dict -> matching rules -> (rule, sink) routes.

No I/O, clock or logging. Semantics of a field condition on ``field``:

- ``old`` is the field in ``data.before`` (``None`` for created events), ``new`` the
  field in ``data.after`` (``None`` for deleted events). When ``data.changes`` has
  the field, its ``old``/``new`` are used.
- ``value`` (what ``eq``, ``ne``, ``in``, ``not_in``, ``gt``/``gte``/``lt``/``lte``,
  ``contains`` and ``is_null`` test) is ``new``, or ``old`` for a deleted event:
  the record as it is now, or as it was when it went away.
- ``changed = true`` holds when the field is in ``data.changes`` (or, without a
  ``changes`` map, when ``old != new``); ``changed = false`` is its negation.
- ``from`` / ``to``: the field changed and ``old`` (``new``) equals the operand, or
  is one of them when the operand is a list. Both given: that exact transition.
- ``crosses_below = t``: ``old >= t`` and ``new < t``; ``crosses_above = t``:
  ``old < t`` and ``new >= t`` (the value moved from one side of ``t`` to the other).
- ``increased_by_pct = p``: ``old`` and ``new`` are numbers, ``old != 0`` and
  ``(new - old) / |old| * 100 >= p``; ``decreased_by_pct`` likewise downwards.
  From or to a missing value, or from zero, no percentage exists: no match.
- ``overdue = true``: the value is a date before the event's own ``time`` (a due
  date already past when the change was seen); ``false`` negates that.
- ``is_null = true``: the value is missing, ``null`` or ``""``.
- ``contains``: substring of a string value, or an element of a list value.
- Equality is numeric across int/float (``1 == 1.0``); booleans equal only
  booleans. Ordering compares numbers with numbers and strings with strings
  (canonical ISO dates order correctly as strings); any other pairing is false.
  A condition never raises, whatever the event holds.

All conditions of a rule's ``when`` must hold (an empty ``when`` matches every event
of the rule's ``sources`` and ``on``); ``any`` holds when one child holds, ``all``
when every child holds, ``not`` when its child does not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from watcher.dates import normalize_date
from watcher.rules.models import Condition, Rule, operand

_MISSING = object()
Router = Callable[[Mapping[str, Any]], Sequence[tuple[str, str]]]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    return type(a) is type(b) and bool(a == b)


def _one_of(value: Any, expected: Any) -> bool:
    if isinstance(expected, list | tuple):
        return any(values_equal(value, e) for e in expected)
    return values_equal(value, expected)


def _compare(a: Any, b: Any) -> int | None:
    """-1/0/1 for comparable pairs (number/number, str/str), else None."""
    if _is_number(a) and _is_number(b):
        fa, fb = float(a), float(b)
    elif isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    else:
        return None
    return (fa > fb) - (fa < fb)


def _pct_change(old: Any, new: Any) -> float | None:
    if not (_is_number(old) and _is_number(new)) or old == 0:
        return None
    return (float(new) - float(old)) / abs(float(old)) * 100.0


class FieldView:
    """``old``/``new``/``value``/``changed`` of one field in one event's data."""

    __slots__ = ("changed", "new", "old", "value")

    def __init__(self, data: Mapping[str, Any], field: str) -> None:
        before = data.get("before")
        after = data.get("after")
        before = before if isinstance(before, Mapping) else None
        after = after if isinstance(after, Mapping) else None
        old: Any = before.get(field) if before is not None else None
        new: Any = after.get(field) if after is not None else None
        changes = data.get("changes")
        if isinstance(changes, Mapping):
            entry = changes.get(field, _MISSING)
            self.changed = entry is not _MISSING
            if isinstance(entry, Mapping):
                old = entry.get("old", old)
                new = entry.get("new", new)
        else:
            self.changed = not values_equal(old, new)
        self.old = old
        self.new = new
        deleted = data.get("change") == "deleted" or (after is None and before is not None)
        self.value = old if deleted else new


def _field_op(op: str, arg: Any, view: FieldView, event_time: str | None) -> bool:
    value = view.value
    if op == "changed":
        return view.changed is bool(arg)
    if op == "from":
        return view.changed and _one_of(view.old, arg)
    if op == "to":
        return view.changed and _one_of(view.new, arg)
    if op == "eq":
        return values_equal(value, arg)
    if op == "ne":
        return not values_equal(value, arg)
    if op == "in":
        return _one_of(value, arg)
    if op == "not_in":
        return not _one_of(value, arg)
    if op in ("gt", "gte", "lt", "lte"):
        cmp = _compare(value, arg)
        if cmp is None:
            return False
        return {"gt": cmp > 0, "gte": cmp >= 0, "lt": cmp < 0, "lte": cmp <= 0}[op]
    if op == "contains":
        if isinstance(value, str) and isinstance(arg, str):
            return arg in value
        if isinstance(value, list | tuple):
            return any(values_equal(v, arg) for v in value)
        return False
    if op == "is_null":
        return (value is None or value == "") is bool(arg)
    if op == "crosses_below":
        before, after = _compare(view.old, arg), _compare(view.new, arg)
        return before is not None and after is not None and before >= 0 and after < 0
    if op == "crosses_above":
        before, after = _compare(view.old, arg), _compare(view.new, arg)
        return before is not None and after is not None and before < 0 and after >= 0
    if op in ("increased_by_pct", "decreased_by_pct"):
        pct = _pct_change(view.old, view.new)
        if pct is None:
            return False
        limit = float(arg)
        return pct >= limit if op == "increased_by_pct" else -pct >= limit
    if op == "overdue":
        due = normalize_date(value) if isinstance(value, str) else None
        past = isinstance(due, str) and event_time is not None and due < event_time
        return past is bool(arg)
    raise AssertionError(f"unknown operator {op}")


def condition_holds(
    cond: Condition, data: Mapping[str, Any], event_time: str | None = None
) -> bool:
    """Does ``cond`` hold for an event's ``data`` (``event_time``: the event's ``time``)?"""
    if cond.any is not None:
        return any(condition_holds(c, data, event_time) for c in cond.any)
    if cond.all is not None:
        return all(condition_holds(c, data, event_time) for c in cond.all)
    if cond.not_ is not None:
        return not condition_holds(cond.not_, data, event_time)
    assert cond.field is not None
    view = FieldView(data, cond.field)
    return all(_field_op(op, operand(cond, op), view, event_time) for op in cond.operators())


def _time(event: Mapping[str, Any]) -> str | None:
    value = event.get("time")
    return normalize_date(value) if isinstance(value, str) else None


def event_data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = event.get("data")
    return data if isinstance(data, Mapping) else {}


def rule_matches(rule: Rule, event: Mapping[str, Any]) -> bool:
    """Source, change and every ``when`` condition (ignores ``enabled``)."""
    data = event_data(event)
    if data.get("source") not in rule.sources or data.get("change") not in rule.on:
        return False
    when = _time(event)
    return all(condition_holds(c, data, when) for c in rule.when)


def matching_rules(rules: Iterable[Rule], event: Mapping[str, Any]) -> list[Rule]:
    """The enabled rules that match ``event``, in the order given."""
    return [r for r in rules if r.enabled and rule_matches(r, event)]


def build_router(rules: Iterable[Rule]) -> Router:
    """A store router: event -> ``[(rule, sink), ...]`` for each enabled matching rule.

    Rules are indexed by (source, change) once, so routing an event only evaluates the
    rules that can match it. Paused rules and sinks are still routed: their
    deliveries wait in the outbox until resumed (nothing is dropped).
    """
    index: dict[tuple[str, str], list[Rule]] = defaultdict(list)
    for rule in rules:
        if not rule.enabled:
            continue
        for source in rule.sources:
            for change in rule.on:
                index[(source, change)].append(rule)

    def route(event: Mapping[str, Any]) -> list[tuple[str, str]]:
        data = event_data(event)
        candidates = index.get((str(data.get("source")), str(data.get("change"))), ())
        when = _time(event) if candidates else None
        return [
            (rule.name, sink)
            for rule in candidates
            if all(condition_holds(c, data, when) for c in rule.when)
            for sink in rule.sinks
        ]

    return route


def order_key(event: Mapping[str, Any]) -> str:
    """``"<source>:<key>"``: deliveries with the same key keep event order per sink."""
    data = event_data(event)
    return f"{data.get('source')}:{data.get('key')}"
