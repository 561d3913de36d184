"""`watcher run --every S`: polls on a sub-minute interval; fails like `watcher run`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.soak import write_config
from watcher.cli import build_parser, main
from watcher.daemon.lock import DaemonLock

SECRETS = {
    "SOAK_GAINSIGHT_KEY": "k",
    "SOAK_HOOK_URL": "http://127.0.0.1:9/hook",
    "SOAK_HOOK_SECRET": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3",
}


def test_every_is_parsed_as_seconds() -> None:
    args = build_parser().parse_args(["run", "--every", "0.5"])
    assert args.every == 0.5
    assert build_parser().parse_args(["run"]).every is None


def test_a_bad_config_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "watcher.toml"
    path.write_text("[gainsight]\nbase_url = 5\n")
    assert main(["--config", str(path), "run", "--every", "0.5"]) == 2
    assert str(path) in capsys.readouterr().err


def test_a_second_daemon_on_the_database_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9/hook")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with DaemonLock(tmp_path / "watcher.db"):
        assert main(["--config", str(path), "run", "--every", "0.5"]) == 1
    assert "another watcher daemon" in capsys.readouterr().err


def test_a_missing_secret_exits_2_naming_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9/hook")
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    assert main(["--config", str(path), "run", "--every", "0.5"]) == 2
    assert "SOAK_GAINSIGHT_KEY" in capsys.readouterr().err
