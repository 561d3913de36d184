"""`watcher demo` (make run): deliveries on screen within seconds; Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import structlog

from watcher.cli.demo import EXAMPLE, demo_config, dump_toml
from watcher.config import load_config, parse_config

pytestmark = pytest.mark.slow


def test_demo_shows_deliveries_within_seconds_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path,
) -> None:
    """Both receivers print a delivery within ~10 s of start; SIGINT exits 0."""
    out_path = tmp_path / "out.txt"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "demo", "--http-port", "0", "--interval", "2",
             "--dir", str(tmp_path / "demo")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
        )  # fmt: skip
    try:
        started = time.monotonic()
        deadline = started + 30
        text = ""
        while time.monotonic() < deadline:
            text = out_path.read_text()
            if "\nwebhook <- gainsight." in text and "\nslack <- " in text:
                break
            time.sleep(0.1)
        first = time.monotonic() - started
        assert "\nwebhook <- gainsight." in text, text
        assert "\nslack <- " in text, text
        assert first < 20, f"first deliveries after {first:.1f}s"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out_path.read_text()
    assert "demo stopped:" in text
    assert "Traceback" not in text


def test_demo_config_is_the_example_pointed_at_the_run(tmp_path: Path) -> None:
    """The written config is the example with the tenant URL, database, rules and port."""
    example = tomllib.loads(EXAMPLE.read_text())
    text = demo_config(example, base_url="http://127.0.0.1:1234", folder=tmp_path, http_port=0)
    data = tomllib.loads(text)
    config = parse_config(data)
    assert config.gainsight.base_url == "http://127.0.0.1:1234"
    assert config.store.path == str(tmp_path / "watcher.db")
    assert config.http is not None
    assert config.http.port == 0
    assert [s.name for s in config.sources] == [s["name"] for s in example["sources"]]
    assert data["sinks"] == example["sinks"]


def test_dump_toml_round_trips_config_shaped_data() -> None:
    """Tables, arrays of tables, dotted keys, quotes and inline tables survive."""
    data = {
        "a": 1,
        "b": 2.5,
        "c": True,
        "d": 'say "hi"\\n',
        "e": ["x", "y"],
        "t": {"k": "v", "inline": {"per": "key", "max": 1}},
        "sinks": {"ops-slack": {"type": "slack"}},
        "items": [{"name": "one"}, {"name": "two", "nested": {"z": 0}}],
    }
    assert tomllib.loads(dump_toml(data)) == data


def test_demo_in_process_runs_for_a_duration_and_restores_nothing_global(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`watcher demo --duration` stops by itself with exit 0 after printing deliveries."""
    from watcher.cli import main

    for name in ("GAINSIGHT_ACCESS_KEY", "WATCHER_FEED_TOKEN", "SLACK_WEBHOOK_URL",
                 "CRM_WEBHOOK_URL", "CRM_WEBHOOK_SECRET"):  # fmt: skip
        monkeypatch.setenv(name, "restored-after-the-test")
    try:
        code = main(
            ["demo", "--duration", "6", "--interval", "1", "--http-port", "0",
             "--dir", str(tmp_path)]
        )  # fmt: skip
    finally:
        structlog.reset_defaults()
    out = capsys.readouterr().out
    assert code == 0
    assert "\nwebhook <- gainsight." in out
    assert "demo stopped:" in out


def test_the_example_config_is_valid_and_finds_the_shipped_rules() -> None:
    """examples/watcher.toml loads, and copied to the project root its rules path reaches
    rules/ (every rule's sources and sinks exist in it)."""
    from watcher.rules.loader import load_rules

    config = load_config(EXAMPLE)
    rules = load_rules(config, base_dir=EXAMPLE.parent.parent)  # as if copied to the root
    assert len(rules) >= 8
    assert {s.name for s in config.sources} == {"companies", "ctas", "goals"}
    assert set(config.sinks) == {"ops-slack", "crm"}
    assert config.http is not None
    assert config.http.host == "127.0.0.1"


def test_the_demo_says_what_each_staged_change_did_by_label() -> None:
    """Each staged change is one line with labels (names, statuses), never picklist ids;
    the simulated CTA's IsClosed follows the status it was set to."""
    from watcher.cli.demo import stage_changes
    from watcher.clock import FakeClock
    from watcher.sim import Tenant

    tenant = Tenant(companies=5, ctas=3, goals=2, seed=3, clock=FakeClock())
    cta = tenant.keys("call_to_action")[0]
    lines = stage_changes(tenant)
    assert len(lines) == 6
    assert "Arr" in lines[1]
    assert "(-20%)" in lines[1]
    assert "CSM" in lines[2]
    assert "-> Closed Success" in lines[4]
    assert "-> Completed" in lines[5]
    assert not any("1I00" in line or "1P01" in line for line in lines)
    closed = tenant.get("call_to_action", cta)
    assert closed is not None
    assert closed["IsClosed"] is True
