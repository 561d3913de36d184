"""Rule-file models (``rules/*.toml``): frozen pydantic, ``extra="forbid"``.

A rule file holds ``[[rules]]`` tables. A condition is either a *field condition*
(``field`` plus one or more operators, all of which must hold) or a *group*
(exactly one of ``any = [...]``, ``all = [...]``, ``not = {...}``). Operator
semantics live in :mod:`watcher.rules.match`.

Operand values that look like dates (TOML dates, ``"2026-12-01"``) are turned into
the canonical ISO form events carry (``2026-12-01T00:00:00.000Z``) so they compare
with event values.

An operand's *kind* is how it is written: a number without quotes, text in quotes,
``true``/``false``, a date. Values compare only with operands of their own kind (see
:mod:`watcher.rules.match`), so operands that could never compare with anything are
refused here, saying how to write them: a quoted number where only numbers make sense
(``gt = "40000"``, ``crosses_below = "50000"``), ``nan`` / ``inf``, ``in = []``, and a
value listed twice.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from watcher.dates import format_utc, normalize_date
from watcher.durations import parse_duration

Change = Literal["created", "updated", "deleted", "delete_held"]
#: The changes of a record (what ``on`` means when it is not given).
RECORD_CHANGES: tuple[Change, ...] = ("created", "updated", "deleted")
Scalar = str | int | float | bool
Number = int | float

#: Operators that read a field (everything except the group keys).
FIELD_OPERATORS = (
    "changed",
    "from",
    "to",
    "eq",
    "ne",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "is_null",
    "was_null",
    "crosses_below",
    "crosses_above",
    "increased_by_pct",
    "decreased_by_pct",
    "overdue",
)
GROUP_KEYS = ("any", "all", "not")
#: Keys of a field condition that modify its operators rather than test anything.
MODIFIERS = ("ignore_case",)
#: Operators whose operand must be a number (a threshold or a percentage).
NUMBER_OPERATORS = ("crosses_below", "crosses_above", "increased_by_pct", "decreased_by_pct")
#: Operators that order values (numbers, dates or text).
ORDER_OPERATORS = ("gt", "gte", "lt", "lte")
#: Operators that take a list of values (``from`` and ``to`` take one value or a list).
LIST_OPERATORS = ("in", "not_in", "from", "to")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _canon(value: Any) -> Any:
    """TOML dates/datetimes and ISO strings -> canonical ISO text; other values unchanged."""
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, date):
        return format_utc(datetime.combine(value, time()))
    if isinstance(value, list | tuple):
        return [_canon(v) for v in value]
    if isinstance(value, str):
        return normalize_date(value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def looks_numeric(text: str) -> bool:
    try:
        return math.isfinite(float(text.replace("_", "x")))
    except ValueError:
        return False


def written(value: Any) -> str:
    """An operand as the admin wrote it in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(written(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {written(v)}" for k, v in value.items()) + " }"
    return str(value)


def _check_scalar(op: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(
            f"{written(value)} equals and orders with nothing, so {op} could never hold; "
            "write a finite number"
        )
    if not isinstance(value, str | int | float | bool | date):
        # pydantic turns ValueError (not TypeError) into a validation error
        raise ValueError(  # noqa: TRY004
            f"{written(value)}: expected a number, text, true/false or a date"
        )


def _check_operand(op: str, value: Any) -> Any:
    """Refuse operands that can never compare with an event value (before type checks)."""
    if value is None:
        return value
    if op in LIST_OPERATORS:
        values = list(value) if isinstance(value, list | tuple) else None
        if values is None:
            if op in ("in", "not_in"):
                raise ValueError(f"{written(value)} must be a list, e.g. {op} = [{written(value)}]")
            values = [value]
        elif not values:
            hint = {
                "in": "in = [] holds for no value, so the rule could never match",
                "not_in": "not_in = [] excludes nothing; list values or remove it",
            }.get(op, f"{op} = [] names no value, so the rule could never match")
            raise ValueError(f"{hint}; list at least one value")
        seen: list[Any] = []
        for item in values:
            _check_scalar(op, item)
            canon = _canon(item)
            if any(type(canon) is type(s) and canon == s for s in seen):
                raise ValueError(f"{written(item)} is listed twice; list each value once")
            seen.append(canon)
        return value
    if op in NUMBER_OPERATORS:
        if not _is_number(value):
            example = value if isinstance(value, str) and looks_numeric(value) else 50000
            raise ValueError(
                f"{written(value)} is not a number; {op} takes a number written without "
                f"quotes, e.g. {op} = {example}"
            )
        _check_scalar(op, value)
        return value
    _check_scalar(op, value)
    if op in ORDER_OPERATORS:
        if isinstance(value, bool):
            raise ValueError(f"{written(value)}: true/false have no order")
        if isinstance(value, str) and looks_numeric(value):
            raise ValueError(
                f"{value!r} is text, and text never orders like a number "
                f"(it matches only text values); write {op} = {value} without quotes"
            )
    return value


def _check_duration(text: str) -> str:
    if parse_duration(text) <= 0:
        raise ValueError(f"duration {text!r} must be more than zero, e.g. '15m'")
    return text


class Condition(_Model):
    """One ``when`` entry. See :mod:`watcher.rules.match` for what each operator means."""

    field: Annotated[str, Field(min_length=1)] | None = None
    changed: bool | None = None
    from_: Scalar | tuple[Scalar, ...] | None = Field(default=None, alias="from")
    to: Scalar | tuple[Scalar, ...] | None = None
    eq: Scalar | None = None
    ne: Scalar | None = None
    in_: tuple[Scalar, ...] | None = Field(default=None, alias="in")
    not_in: tuple[Scalar, ...] | None = None
    gt: Number | str | None = None
    gte: Number | str | None = None
    lt: Number | str | None = None
    lte: Number | str | None = None
    contains: Scalar | None = None
    is_null: bool | None = None
    was_null: bool | None = None
    crosses_below: Number | None = None
    crosses_above: Number | None = None
    increased_by_pct: Annotated[Number, Field(gt=0)] | None = None
    decreased_by_pct: Annotated[Number, Field(gt=0)] | None = None
    overdue: bool | None = None
    ignore_case: bool = False
    any: tuple[Condition, ...] | None = None
    all: tuple[Condition, ...] | None = None
    not_: Condition | None = Field(default=None, alias="not")

    @field_validator(
        "from_", "to", "eq", "ne", "in_", "not_in", "gt", "gte", "lt", "lte", mode="before"
    )
    @classmethod
    def _canonical_dates(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.field_name or "?"
        _check_operand({"from_": "from", "in_": "in"}.get(name, name), value)
        return _canon(value)

    @field_validator(
        "contains", "crosses_below", "crosses_above", "increased_by_pct", "decreased_by_pct",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _operands(cls, value: Any, info: ValidationInfo) -> Any:
        return _check_operand(info.field_name or "?", value)

    @model_validator(mode="after")
    def _shape(self) -> Condition:
        ops = self.operators()
        groups = [k for k in GROUP_KEYS if getattr(self, _attr(k)) is not None]
        if groups:
            if len(groups) > 1 or ops or self.field is not None:
                raise ValueError(
                    f"a group condition has exactly one of any/all/not and nothing else "
                    f"(found {', '.join(groups + ops + (['field'] if self.field else []))}); "
                    "put field conditions inside the group"
                )
            if self.ignore_case:
                raise ValueError(
                    "ignore_case belongs in a field condition, next to the operators it "
                    "changes, e.g. { field = 'Stage', eq = 'risk', ignore_case = true }"
                )
            if self.any is not None and not self.any:
                raise ValueError("any = [] never matches; list at least one condition")
            if self.all is not None and not self.all:
                raise ValueError("all = [] is empty; list at least one condition")
            return self
        if self.field is None:
            raise ValueError(
                "a condition needs field = '<name>' and an operator, "
                "e.g. { field = 'Arr', decreased_by_pct = 10 }, or a group any/all/not"
            )
        if not ops:
            raise ValueError(
                f"condition on {self.field!r} has no operator; use one of "
                f"{', '.join(FIELD_OPERATORS)}"
            )
        if self.changed is False and ({"from", "to"} & set(ops)):
            raise ValueError(
                "changed = false with from/to could never hold (from/to need a change); "
                "remove one of them"
            )
        return self

    def operators(self) -> list[str]:
        """The field operators this condition sets, in vocabulary order."""
        return [op for op in FIELD_OPERATORS if getattr(self, _attr(op)) is not None]

    def fields(self) -> set[str]:
        """Every field name this condition (and its groups) reads."""
        out = {self.field} if self.field else set()
        for child in (self.any or ()) + (self.all or ()) + ((self.not_,) if self.not_ else ()):
            out |= child.fields()
        return out


def _attr(key: str) -> str:
    return {"from": "from_", "in": "in_", "not": "not_"}.get(key, key)


def operand(cond: Condition, op: str) -> Any:
    """The operand of ``op`` as written (``from``/``in``/``not`` mapped to attributes)."""
    return getattr(cond, _attr(op))


class _Window(_Model):
    """A ``window`` duration (``"1h"``), checked when the rule file loads."""

    window: str

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        return _check_duration(value)

    @property
    def window_seconds(self) -> float:
        return parse_duration(self.window)


class Throttle(_Window):
    """At most ``max`` deliveries per ``window``, per record key or for the whole rule."""

    per: Literal["key", "rule"] = "key"
    max: Annotated[int, Field(ge=1)] = 1


class Digest(_Window):
    """One notification for all of a rule's matches within ``window``."""


def _no_duplicates(name: str, values: Any) -> Any:
    if isinstance(values, list | tuple):
        seen: set[Any] = set()
        for value in values:
            if isinstance(value, str) and value in seen:
                raise ValueError(f"{written(value)} is listed twice; list each {name} once")
            if isinstance(value, str):
                seen.add(value)
    return values


class Rule(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    description: str = ""
    owner: str = ""
    sources: Annotated[tuple[str, ...], Field(min_length=1)]
    on: Annotated[tuple[Change, ...], Field(min_length=1)] = RECORD_CHANGES
    when: tuple[Condition, ...] = ()
    sinks: Annotated[tuple[str, ...], Field(min_length=1)]
    throttle: Throttle | None = None
    digest: Digest | None = None
    enabled: bool = True

    @field_validator("sources", "on", "sinks")
    @classmethod
    def _unique(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        """``on = ["updated", "updated"]`` would queue (and replay) each event twice."""
        names = {"sources": "source", "on": "change", "sinks": "sink"}
        _no_duplicates(names.get(info.field_name or "", "value"), value)
        return value

    @field_validator("digest", mode="before")
    @classmethod
    def _digest_shorthand(cls, value: Any) -> Any:
        """``digest = "15m"`` is short for ``digest = { window = "15m" }``."""
        return {"window": value} if isinstance(value, str) else value

    def fields(self) -> set[str]:
        out: set[str] = set()
        for cond in self.when:
            out |= cond.fields()
        return out


class RuleFile(_Model):
    rules: tuple[Rule, ...] = ()
