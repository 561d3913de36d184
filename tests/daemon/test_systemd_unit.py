"""systemd/watcher.service: what spec.md asks of it, and systemd-analyze's verdicts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.tools import require_program

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "watcher.service"


def analyze() -> str:
    return require_program("systemd-analyze", install="Debian: apt-get install systemd")


def console_script() -> str:
    """The ``watcher`` script beside this Python (``make install`` puts it there)."""
    return require_program(str(Path(sys.executable).with_name("watcher")), install="make install")


def directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_has_the_settings_the_spec_requires() -> None:
    """Type=notify with a watchdog, restart on failure, dynamic user, state dir, credentials."""
    d = directives()
    assert d["Type"] == ["notify"]
    assert int(d["WatchdogSec"][0]) > 0
    assert d["Restart"] == ["on-failure"]
    assert d["DynamicUser"] == ["yes"]
    assert d["StateDirectory"] == ["gainsight-watcher"]
    assert {v.split(":")[0] for v in d["LoadCredential"]} == {
        "gainsight-access-key",
        "feed-token",
        "slack-webhook-url",
        "crm-webhook-secret",
    }
    assert "run" in d["ExecStart"][0].split()
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    grace = float(re.search(r"--grace (\d+)", d["ExecStart"][0]).group(1))  # type: ignore[union-attr]
    assert grace < float(d["TimeoutStopSec"][0]), "grace must end before systemd kills us"
    assert d["RestartPreventExitStatus"] == ["2"]
    # the HTTP server's connection cap (64) sits well inside the open-file limit
    assert 256 <= int(d["LimitNOFILE"][0]) <= 65536


def test_systemd_analyze_security_rates_the_unit_2_or_lower(tmp_path: Path) -> None:
    """`systemd-analyze security --offline=true` gives an exposure level <= 2.0."""
    result = subprocess.run(
        [analyze(), "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    """`systemd-analyze verify` reports nothing (with ExecStart pointing at a real binary)."""
    text = UNIT.read_text().replace("/opt/gainsight-watcher/venv/bin/watcher", console_script())
    unit = tmp_path / "watcher.service"
    unit.write_text(text)
    result = subprocess.run(
        [analyze(), "verify", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_the_example_config_names_the_units_state_directory() -> None:
    """The unit can write only its StateDirectory (ProtectSystem=strict): the example's
    systemd path must point there, not at a read-only /var/lib/watcher."""
    example = (UNIT.parents[1] / "examples" / "watcher.toml").read_text()
    state = directives()["StateDirectory"][0]
    assert f"/var/lib/{state}/watcher.db" in example
    assert "/var/lib/watcher/" not in example
