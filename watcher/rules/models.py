"""Rule-file models (``rules/*.toml``): frozen pydantic, ``extra="forbid"``.

A rule file holds ``[[rules]]`` tables. A condition is either a *field condition*
(``field`` plus one or more operators, all of which must hold) or a *group*
(exactly one of ``any = [...]``, ``all = [...]``, ``not = {...}``). Operator
semantics live in :mod:`watcher.rules.match`.

Operand values that look like dates (TOML dates, ``"2026-12-01"``) are turned into
the canonical ISO form events carry (``2026-12-01T00:00:00.000Z``) so they compare
with event values.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watcher.dates import format_utc, normalize_date
from watcher.durations import parse_duration

Change = Literal["created", "updated", "deleted"]
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
    "crosses_below",
    "crosses_above",
    "increased_by_pct",
    "decreased_by_pct",
    "overdue",
)
GROUP_KEYS = ("any", "all", "not")


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
    crosses_below: Number | None = None
    crosses_above: Number | None = None
    increased_by_pct: Annotated[float, Field(gt=0)] | None = None
    decreased_by_pct: Annotated[float, Field(gt=0)] | None = None
    overdue: bool | None = None
    any: tuple[Condition, ...] | None = None
    all: tuple[Condition, ...] | None = None
    not_: Condition | None = Field(default=None, alias="not")

    @field_validator(
        "from_", "to", "eq", "ne", "in_", "not_in", "gt", "gte", "lt", "lte", mode="before"
    )
    @classmethod
    def _canonical_dates(cls, value: Any) -> Any:
        return _canon(value)

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


class Rule(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    description: str = ""
    owner: str = ""
    sources: Annotated[tuple[str, ...], Field(min_length=1)]
    on: Annotated[tuple[Change, ...], Field(min_length=1)] = ("created", "updated", "deleted")
    when: tuple[Condition, ...] = ()
    sinks: Annotated[tuple[str, ...], Field(min_length=1)]
    throttle: Throttle | None = None
    digest: Digest | None = None
    enabled: bool = True

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
