"""``watcher check --connect``: each source's real requests, once, against the strict sim."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.cli import main
from watcher.clock import FakeClock
from watcher.testing.sim import running_sim

SOURCES = """
[[sources]]
name = "companies"
kind = "company"
select = ["Gsid", "Name", "Arr", "Stage__gr.Name", "ModifiedDate"]
incremental = "*/2 * * * *"
delete_log = "*/10 * * * *"

[[sources]]
name = "ctas"
kind = "cta"
select = ["Gsid", "Name", "StatusId", "IsClosed", "ModifiedDate"]
incremental = "*/2 * * * *"
delete_log = "*/10 * * * *"

[[sources]]
name = "cockpit-ctas"
kind = "cta"
api = "cockpit"
select = ["Gsid", "Name", "ModifiedDate"]
incremental = "*/5 * * * *"
delete_log = "*/10 * * * *"

[[sources]]
name = "goals"
kind = "goal"
select = ["Gsid", "Name", "ModifiedDate"]
"""

BROKEN = """
[[sources]]
name = "drifted"
kind = "company"
select = ["Gsid", "Name", "Nps_Gone"]
incremental = "*/2 * * * *"
"""


def write(tmp_path: Path, base_url: str, sources: str) -> Path:
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[gainsight]\nbase_url = "{base_url}"\naccess_key_env = "GS_PROBE_KEY"\n'
        f"[rules]\npaths = []\n{sources}",
        encoding="utf-8",
    )
    return cfg


def test_check_connect_probes_every_source_and_exits_0_when_all_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GS_PROBE_KEY", "sim-key")
    with running_sim(companies=5, ctas=5, goals=3, clock=FakeClock(), strict_docs=True) as sim:
        cfg = write(tmp_path, sim.base_url, SOURCES)
        before = sim.tenant.requests_served
        code = main(["check", "--connect", "--config", str(cfg)])
        served = sim.tenant.requests_served - before
    out = capsys.readouterr().out
    assert code == 0, out
    for name in ("companies", "ctas", "cockpit-ctas", "goals"):
        assert f"source {name!r}" in out
    assert "POST /v2/cockpit/cta/deleted/list" in out
    assert "POST /v1/data/objects/query/record_delete_log" in out
    assert "GET /v1/meta/services/objects/list" in out
    assert "FAILED" not in out
    assert served <= 5 * 4


def test_check_connect_exits_1_naming_the_source_request_and_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GS_PROBE_KEY", "sim-key")
    with running_sim(companies=5, clock=FakeClock(), strict_docs=True) as sim:
        cfg = write(tmp_path, sim.base_url, BROKEN)
        code = main(["check", "--connect", "--config", str(cfg)])
    captured = capsys.readouterr()
    assert code == 1
    assert "error: connect: source 'drifted': sweep page" in captured.err
    assert "sources['drifted'].select" in captured.err
    assert "Nps_Gone" in captured.out
