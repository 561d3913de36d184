"""Switches of the simulated tenant: API behaviour (:class:`SimOptions`) and faults
(:class:`Faults`).

Both are plain mutable dataclasses: tests flip them at runtime through
``tenant.options`` / ``tenant.faults`` or the admin API (``POST /__sim/options``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

DateMode = Literal["epoch_ms", "iso"]
EmptyForm = Literal["empty", "result_false", "gsobj_1011"]
DataShape = Literal["records", "list"]
OverLimit = Literal["error", "clamp"]
FaultKind = Literal["error", "malformed", "truncated", "short", "result_false"]


def _default_date_modes() -> dict[str, DateMode]:
    # Company/MDA doc samples show epoch ms; CTA, delete-log and timeline samples show ISO.
    return {"company": "epoch_ms"}


@dataclass
class SimOptions:
    """How the simulated API behaves where the real one is ambiguous (gainsight-api.md §10)."""

    requests_per_minute: int = 100
    requests_per_day: int = 50_000
    retry_after: bool = False  # send Retry-After on 429 (the real API documents none)
    ratelimit_header: bool = False  # send x-ratelimit-limit on every reply
    empty_form: EmptyForm = "empty"
    data_shape: DataShape = "records"  # MDA query `data`: {"records": [...]} or a bare list
    over_limit: OverLimit = "error"  # limit > 5000 / pageSize > 1000
    date_modes: dict[str, DateMode] = field(default_factory=_default_date_modes)
    # per field, overriding the object's mode: {"company.renewaldate": "iso"} (lower case)
    date_field_modes: dict[str, DateMode] = field(default_factory=dict)
    default_date_mode: DateMode = "iso"
    cockpit_unstable_order: bool = False  # each CTA/goal page request sees a new order
    cockpit_default_fields: bool = False  # add the doc sample's extra CTA fields to every row
    goals_path: str = "/v1/csgoal/external/list"  # lenient only: an undocumented guess
    # Accept only what Gainsight documents: the Cockpit routes refuse operators and
    # datetime values no sample shows (400 COCKPIT_5102), the guessed goals route is
    # gone (404), and a CTA delete does not touch its ModifiedDate.
    strict_docs: bool = False
    max_limit: int = 5000
    max_page_size: int = 1000

    def date_mode(self, object_name: str, field_key: str | None = None) -> DateMode:
        """How dates of ``object_name`` (optionally: its selected ``field_key``) render."""
        if field_key is not None and self.date_field_modes:
            mode = self.date_field_modes.get(f"{object_name}.{field_key}".lower())
            if mode is not None:
                return mode
        return self.date_modes.get(object_name.lower(), self.default_date_mode)


@dataclass
class Faults:
    """Injected failures. Rates are probabilities per data request (seeded, deterministic).

    ``script`` lists faults for the next data requests, one per request, before the
    rates apply (``None`` = serve normally): the deterministic way for a test to say
    "the second page fails with 500".
    """

    error_rate: float = 0.0  # HTTP 500 GU_1101
    latency: float = 0.0  # seconds added to every data reply
    malformed_rate: float = 0.0  # body is not JSON
    truncated_rate: float = 0.0  # body cut short mid-JSON, status 200
    short_page_rate: float = 0.0  # valid JSON, but only the first half of the page's rows
    result_false_rate: float = 0.0  # HTTP 200 with result:false
    mutations_between_pages: int = 0  # random mutations before each page after the first
    script: list[FaultKind | None] = field(default_factory=list)


_SIM_FIELDS = {f.name for f in fields(SimOptions)}
_FAULT_FIELDS = {f.name for f in fields(Faults)}


def split_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword settings into (options, faults); unknown names raise ``TypeError``."""
    unknown = set(settings) - _SIM_FIELDS - _FAULT_FIELDS
    if unknown:
        raise TypeError(
            f"unknown simulator setting(s) {sorted(unknown)}; "
            f"options: {sorted(_SIM_FIELDS)}; faults: {sorted(_FAULT_FIELDS)}"
        )
    opts = {k: v for k, v in settings.items() if k in _SIM_FIELDS}
    flts = {k: v for k, v in settings.items() if k in _FAULT_FIELDS}
    return opts, flts


def apply_settings(target: SimOptions | Faults, values: dict[str, Any]) -> None:
    """Set attributes on ``target``; names must exist."""
    for key, value in values.items():
        if not hasattr(target, key):
            raise TypeError(f"unknown setting {key!r}")
        setattr(target, key, value)
