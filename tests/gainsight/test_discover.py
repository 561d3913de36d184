"""``watcher discover``: objects and fields from the tenant's metadata; a block that works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watcher.cli import main
from watcher.clock import FakeClock
from watcher.config import parse_config
from watcher.testing.sim import running_sim


def config(tmp_path: Path, base_url: str, extra: str = "") -> Path:
    cfg = tmp_path / "watcher.toml"
    cfg.write_text(
        f'[gainsight]\nbase_url = "{base_url}"\naccess_key_env = "GS_DISCOVER_KEY"\n'
        f"[rules]\npaths = []\n{extra}",
        encoding="utf-8",
    )
    return cfg


def test_discover_lists_objects_and_describes_one_with_a_block_check_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GS_DISCOVER_KEY", "sim-key")
    with running_sim(companies=4, ctas=4, goals=2, clock=FakeClock(), strict_docs=True) as sim:
        cfg = config(tmp_path, sim.base_url)
        assert main(["discover", "--config", str(cfg)]) == 0
        listing = capsys.readouterr().out
        assert main(["discover", "call_to_action", "--config", str(cfg)]) == 0
        described = capsys.readouterr().out
        assert main(["discover", "call_to_action", "--json", "--config", str(cfg)]) == 0
        as_json = json.loads(capsys.readouterr().out)
        block = described.split("watcher check --connect`\n", 1)[1]
        checked = config(tmp_path, sim.base_url, block)
        code = main(["check", "--connect", "--config", str(checked)])
        out = capsys.readouterr().out
    assert "cs_goal" in listing
    assert "Customer Goals" in listing
    assert "CompanyId__gr.Name" in described
    assert "StatusId__gr.Name" in described
    assert as_json["object"] == "call_to_action"
    company = {
        "name": "CompanyId",
        "label": "Company",
        "data_type": "GSID",
        "lookup": "Company",
        "label_path": "CompanyId__gr.Name",
    }
    assert company in as_json["fields"]
    parsed = parse_config({"gainsight": {"base_url": "https://x.gainsightcloud.com",
                                         "access_key_env": "K"}, **_toml(block)})  # fmt: skip
    assert parsed.sources[0].kind == "cta"
    assert code == 0, out


def _toml(block: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(block)
