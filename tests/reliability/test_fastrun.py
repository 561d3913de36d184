"""The soak's daemon entry point fails like ``watcher run`` does: clearly, with exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from watcher.daemon.lock import DaemonLock
from watcher.reliability.fastrun import main
from watcher.reliability.soak import write_config


@pytest.fixture(autouse=True)
def _keep_logging_config() -> Iterator[None]:
    """main() configures structlog for its process; give the next tests theirs back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_a_bad_config_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "watcher.toml"
    path.write_text("[gainsight]\nbase_url = 5\n")
    assert main(["--config", str(path)]) == 2
    assert str(path) in capsys.readouterr().err


def test_a_second_daemon_on_the_database_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("SOAK_GAINSIGHT_KEY", "k")
    monkeypatch.setenv("SOAK_HOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("SOAK_HOOK_SECRET", "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3")
    with DaemonLock(tmp_path / "watcher.db"):
        assert main(["--config", str(path)]) == 1
    assert "another watcher daemon" in capsys.readouterr().err


def test_a_missing_secret_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9/hook")
    for name in ("SOAK_GAINSIGHT_KEY", "SOAK_HOOK_URL", "SOAK_HOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--config", str(path)]) == 2
    assert "SOAK_GAINSIGHT_KEY" in capsys.readouterr().err
