"""bench/load.py --fast-lane: which changes count as made *during* a CTA sweep and
which as made *without* a sweep (the issue's target compares the two p95s), and the
mode runs end to end on a tiny tenant."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 2, 0, 5, tzinfo=UTC)


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "load.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def iso(seconds: float) -> str:
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_only_changes_made_while_a_cta_sweep_ran_count_as_during() -> None:
    bench = load_bench()
    change = bench.Change
    name = {"old": "x", "new": "y"}
    changes = [
        change(1, iso(-30), "call_to_action", "c0", "updated", {"Name": name}),  # pre-baseline
        change(2, iso(10), "call_to_action", "c1", "updated", {"Name": name}),  # without: 5 s
        change(3, iso(20), "Company", "a1", "updated", {"Arr": name}),  # without: 7 s
        change(4, iso(55), "call_to_action", "c2", "updated", {"Name": name}),  # cut: neither
        change(5, iso(70), "call_to_action", "c3", "updated", {"Name": name}),  # during: 12 s
        change(6, iso(90), "Company", "a2", "updated", {"Csm": name}),  # during: 20 s
        change(7, iso(95), "Company", "a3", "updated", {"Employees": name}),  # not selected
        change(8, iso(100), "call_to_action", "c4", "deleted", {}),  # during, a delete
        change(9, iso(150), "Company", "a4", "created", {}),  # after the sweep: without
    ]
    sweeps = {
        "companies": [(at(-60), at(-20))],
        "ctas": [(at(-60), at(0)), (at(60), at(120))],
    }
    modes = {
        ("ctas", "c0"): [(at(-25), "full")],
        ("ctas", "c1"): [(at(15), "incremental")],
        ("companies", "a1"): [(at(27), "incremental")],
        ("ctas", "c2"): [(at(65), "incremental")],
        ("ctas", "c3"): [(at(82), "incremental")],
        ("companies", "a2"): [(at(110), "full")],
        ("ctas", "c4"): [(at(125), "delete_log")],
        ("companies", "a4"): [(at(156), "incremental")],
    }
    receipts = [(at(83), {"data": {"source": "ctas", "key": "c3"}})]
    baseline_end = {"companies": at(-20), "ctas": at(0)}

    out: dict[str, Any] = bench.fast_lane_figures(changes, baseline_end, sweeps, modes, receipts)

    assert out["during"]["committed_s"] == {"n": 2, "p50": 16.0, "p95": 20.0, "max": 20.0}
    assert out["during"]["by_source_committed_s"]["ctas"]["max"] == 12.0
    assert out["during"]["webhook_s"] == {"n": 1, "p50": 13.0, "p95": 13.0, "max": 13.0}
    assert out["during"]["deletes_committed_s"]["n"] == 1
    assert out["during"]["found_by_poll_mode"] == {"incremental": 1, "full": 1}
    assert out["without"]["committed_s"] == {"n": 3, "p50": 6.0, "p95": 7.0, "max": 7.0}
    assert out["p95_ratio_during_over_without"]["committed_s"] == round(20.0 / 7.0, 2)
    assert out["target"] == {"p95_ratio_max": 2.0, "met": False}
    assert [s["minutes"] for s in out["cta_sweeps"]] == [1.0]  # the baseline is not one


def test_no_figure_before_both_baselines_are_in() -> None:
    bench = load_bench()
    changes = [bench.Change(1, iso(10), "Company", "a1", "created", {})]
    modes = {("companies", "a1"): [(at(15), "incremental")]}
    out = bench.fast_lane_figures(changes, {"companies": at(0)}, {}, modes, [])
    assert out["without"]["committed_s"] == {"n": 0}
    assert out["target"]["met"] is False


def test_the_fast_lane_mode_runs_end_to_end_on_a_tiny_tenant(tmp_path: Path) -> None:
    """A config, schedule or analysis change that breaks `make bench`'s load run fails
    here: the daemon on the fast lane, a sweep during the changes, the figures printed."""
    out = tmp_path / "load.json"
    done = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "load.py"), "--fast-lane",
            "--companies", "300", "--ctas", "600", "--scale", "20", "--minutes", "4",
            "--full-sweep", "*/2 * * * *", "--mutations-per-min", "60", "--out", str(out),
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("fast lane (10s), change -> event committed"), last
    assert "p95 ratio" in last, last
    assert "target <= 2.0x" in last, last
    assert out.exists()
