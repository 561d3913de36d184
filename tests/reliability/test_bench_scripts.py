"""The benchmark scripts stay runnable: each imports what it names and prints its usage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [
    "deliver.py",
    "faults.py",
    "latency.py",
    "load.py",
    "page_calls.py",
    "sim_serve.py",
    "status_page.py",
    "sweep.py",
    "throttle.py",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_bench_script_imports_and_prints_its_usage(script: str) -> None:
    """`bench/<script> --help` exits 0 with a usage line (a stale import fails it)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")


def test_the_list_names_every_bench_script() -> None:
    """A new script is added to the list above, so it is checked too."""
    found = {p.name for p in (ROOT / "bench").glob("*.py")}
    assert found == set(SCRIPTS)


def test_the_sweep_benchmark_runs_end_to_end_in_its_tiny_mode() -> None:
    """`bench/sweep.py --n 5000` drives the real `watcher poll` against its page server
    and prints every figure: a CLI or config change that breaks the benchmark fails here."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sweep.py"), "--n", "5000"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for figure in ("floor", "baseline", "steady", "1% changed", "peak RSS"):
        assert figure in done.stdout, done.stdout
    assert "created 5,000" in done.stdout, done.stdout
    assert "updated 50" in done.stdout, done.stdout
    assert "REFUSED" not in done.stdout, done.stdout
