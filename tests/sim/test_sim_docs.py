"""docs/simulator.md names every switch and fault the simulator has."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from watcher.sim.options import Faults, SimOptions

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"


def test_every_option_and_fault_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [
        f.name
        for cls in (SimOptions, Faults)
        for f in fields(cls)
        if f"`{f.name}`" not in text and f"`{f.name}` /" not in text
    ]
    # max_limit / max_page_size are the documented 5000 / 1000 caps
    assert set(missing) <= {"max_limit", "max_page_size"}, missing


def test_every_admin_route_is_documented() -> None:
    from watcher.sim import admin

    text = DOC.read_text(encoding="utf-8")
    for line in (admin.__doc__ or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("GET", "POST"):
            assert parts[1].split("?")[0] in text, parts[1]
