"""The diff (pure): previous state + new records -> created / updated / deleted.

No I/O, clock or logging. Records are normalized (:mod:`watcher.core.normalize`)
before they are compared, so a different spelling of the same value is never a
change. Fields in ``ignore_fields`` are never reported: a record whose only
differences are in ignored fields is not *updated*, but it is still *touched*
(the stored snapshot takes the new values, silently). An empty string and
``None`` (or a missing field) are the same "no value": Gainsight spells a
cleared field either way, so ``"" -> null`` is a touch, not a change.

Two levels:

- :func:`compare` - one key: stored record (or ``None``) vs new record (or ``None``).
  The poll engine calls it page by page.
- :func:`diff` - whole states, for tests and small sources. :func:`apply` replays a
  :class:`Diff` onto a state; ``apply(a, diff(a, b)) == normalize_state(b)``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from watcher.core.normalize import Record, has_surrogate, normalize_record, same_value

ChangeKind = Literal["created", "updated", "deleted"]


@dataclass(frozen=True, slots=True)
class FieldChange:
    old: Any
    new: Any

    def as_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True)
class Change:
    """One key's change. ``before``/``after`` are normalized; ``None`` when absent."""

    change: ChangeKind
    key: str
    before: Record | None
    after: Record | None
    changes: Mapping[str, FieldChange] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Touch:
    """A snapshot refresh that is not a change (only ignored fields differ)."""

    key: str
    after: Record


@dataclass(frozen=True, slots=True)
class Diff:
    changes: list[Change]
    touched: list[Touch]

    def __bool__(self) -> bool:
        return bool(self.changes or self.touched)


def field_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], ignore_fields: Collection[str] = ()
) -> dict[str, FieldChange]:
    """Field-level differences of two normalized records, by field name; a missing
    field reads as ``None``."""
    found: list[str] = []
    for name in before.keys() | after.keys():
        old = before.get(name)
        new = after.get(name)
        if old == new and type(old) is type(new) and type(old) not in _CONTAINERS:
            continue  # equal values of one plain type: same_value would say so
        if name in ignore_fields:
            continue
        if not same_value(old, new) and not (_blank(old) and _blank(new)):
            found.append(name)
    return {name: FieldChange(before.get(name), after.get(name)) for name in sorted(found)}


_CONTAINERS = (dict, list)


def _blank(value: Any) -> bool:
    """No value: ``None`` or ``""`` (a missing field reads as ``None``)."""
    return value is None or (type(value) is str and not value)


def compare(
    key: str,
    before: Record | None,
    after: Record | None,
    ignore_fields: Collection[str] = (),
) -> Change | Touch | None:
    """What happened to ``key``: both records must already be normalized.

    Returns a :class:`Change`, a :class:`Touch` (only ignored fields, or the shape
    of the record without any value, differ) or ``None`` (identical).
    """
    if before is None and after is None:
        return None
    if before is None:
        return Change("created", key, None, after)
    if after is None:
        return Change("deleted", key, before, None)
    changes = field_changes(before, after, ignore_fields)
    if changes:
        return Change("updated", key, before, after, changes)
    if before == after and _same_types(before, after):
        return None
    return Touch(key, after)


def _same_types(a: Record, b: Record) -> bool:
    return all(same_value(a[k], b[k]) for k in a)


def normalize_state(records: Iterable[Mapping[str, Any]], key_field: str) -> dict[str, Record]:
    """Key -> normalized record; a later duplicate key wins (as a re-read would)."""
    state: dict[str, Record] = {}
    for record in records:
        norm = normalize_record(record)
        state[record_key(norm, key_field)] = norm
    return state


def key_of(record: Mapping[str, Any], key_field: str) -> str | None:
    """The key of a record as text; ``None`` when it has no usable one.

    Unusable: missing, ``null``, ``""``, a list, object or boolean, or text with a
    lone surrogate (it cannot be stored, and no by-key read can ask for it).
    """
    value = record.get(key_field)
    if value is None or value == "" or isinstance(value, bool | dict | list):
        return None
    text = value if isinstance(value, str) else str(value)
    return None if has_surrogate(text) else text


def record_key(record: Mapping[str, Any], key_field: str) -> str:
    """The key of a record as text; a record without a usable one is an error."""
    key = key_of(record, key_field)
    if key is None:
        raise ValueError(f"record has no usable value for its key field {key_field!r}")
    return key


def diff(
    previous: Mapping[str, Record],
    records: Iterable[Mapping[str, Any]],
    key_field: str,
    ignore_fields: Collection[str] = (),
) -> Diff:
    """Compare a normalized ``previous`` state with a complete new reading ``records``.

    Keys absent from ``records`` are deleted. Output is ordered by key.
    """
    current = normalize_state(records, key_field)
    changes: list[Change] = []
    touched: list[Touch] = []
    for key in sorted(previous.keys() | current.keys()):
        result = compare(key, previous.get(key), current.get(key), ignore_fields)
        if isinstance(result, Change):
            changes.append(result)
        elif isinstance(result, Touch):
            touched.append(result)
    return Diff(changes, touched)


def apply(previous: Mapping[str, Record], result: Diff) -> dict[str, Record]:
    """Replay ``result`` onto ``previous``: the state the diff was computed against."""
    state = dict(previous)
    for change in result.changes:
        if change.after is None:
            state.pop(change.key, None)
        else:
            state[change.key] = change.after
    for touch in result.touched:
        state[touch.key] = touch.after
    return state
