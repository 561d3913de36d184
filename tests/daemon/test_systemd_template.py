"""systemd/watcher@.service: one instance per tenant, hardened exactly like the main unit,
verified and rated by systemd-analyze."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.daemon.test_systemd_unit import analyze, console_script

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
TEMPLATE = SYSTEMD / "watcher@.service"
MAIN = SYSTEMD / "watcher.service"
#: What differs per instance; everything else must equal the main unit.
PER_INSTANCE = {"Description", "ExecStart", "StateDirectory", "WorkingDirectory", "LoadCredential"}


def directives(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_each_instance_has_its_own_config_state_and_credentials() -> None:
    d = directives(TEMPLATE)
    assert "--config /etc/gainsight-watcher/%i.toml run" in d["ExecStart"][0]
    assert d["StateDirectory"] == ["gainsight-watcher/%i"]
    assert d["WorkingDirectory"] == ["/var/lib/gainsight-watcher/%i"]
    for credential in d["LoadCredential"]:
        name, _, source = credential.partition(":")
        assert source == f"/etc/gainsight-watcher/credentials/%i/{name}"


def test_everything_else_is_the_main_unit() -> None:
    """Hardening, watchdog, restart policy: the same as watcher.service, line for line."""
    template, main = directives(TEMPLATE), directives(MAIN)
    assert set(template) == set(main)
    for key in set(main) - PER_INSTANCE:
        assert template[key] == main[key], key


def _analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([analyze(), *args], capture_output=True, text=True, check=False, cwd=cwd)


def test_an_instance_rates_2_or_lower(tmp_path: Path) -> None:
    unit = tmp_path / "watcher@sandbox.service"
    shutil.copy(TEMPLATE, tmp_path / "watcher@.service")
    result = _analyze("security", "--offline=true", "--no-pager", str(unit), cwd=tmp_path)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0


def test_an_instance_verifies_clean(tmp_path: Path) -> None:
    text = TEMPLATE.read_text().replace("/opt/gainsight-watcher/venv/bin/watcher", console_script())
    (tmp_path / "watcher@.service").write_text(text)
    result = _analyze("verify", str(tmp_path / "watcher@sandbox.service"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
