"""The base of the config models and the validators several sections share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from watcher.durations import parse_duration


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_CRON_FIELDS = (
    ("minutes", 0, 59),
    ("hours", 0, 23),
    ("days", 1, 31),
    ("months", 1, 12),
    ("weekdays", 0, 7),
)


def _check_cron(expr: str) -> str:
    """Five-field cron; steps and values must fit each field (croniter accepts '*/61')."""
    fields = expr.split()
    advice = "use five fields 'minute hour day month weekday', e.g. '*/5 * * * *'"
    if len(fields) != 5:
        raise ValueError(f"cron {expr!r} is invalid ({len(fields)} fields); {advice}")
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            _, _, step = part.partition("/")
            if step.isdigit() and not 0 < int(step) <= high - low + 1:
                raise ValueError(
                    f"cron {expr!r} is invalid ({name} are {low}-{high}, step {step} is out "
                    f"of range); {advice}"
                )
    from croniter import croniter  # a config without cron schedules never needs it

    if not croniter.is_valid(expr):
        ranges = ", ".join(f"{n} {lo}-{hi}" for n, lo, hi in _CRON_FIELDS)
        raise ValueError(f"cron {expr!r} is invalid ({ranges}); {advice}")
    return expr


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text
