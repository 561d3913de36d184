"""Start-up: a command imports only what it needs. `watcher --help` builds the parser
without the config models, the store or asyncio; `watcher poll` runs a sweep without
the daemon, the HTTP server (starlette, uvicorn), the nats client or prometheus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from watcher.testing.sim import running_sim

PROBE = """
import json, os, sys
from watcher.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
names = set(sys.modules)
top = sorted({m.split(".")[0] for m in names} | {m for m in names if m.startswith("watcher.")})
plugins = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
print(json.dumps({"code": code, "modules": top, "plugins": plugins}), file=sys.stderr)
"""

DAEMON_ONLY = ("starlette", "uvicorn", "nats", "prometheus_client")  # h11: httpx uses it too


def _report(*argv: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **(env or {})},
        check=False,
    )
    last = done.stderr.strip().splitlines()[-1]
    report: dict[str, Any] = json.loads(last)
    return report


def _modules(*argv: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    report = _report(*argv, env=env)
    return report["code"], set(report["modules"])


def test_help_imports_no_config_models_store_or_asyncio() -> None:
    code, modules = _modules("--help")
    assert code == 0
    heavy = {"pydantic", "sqlite_utils", "asyncio", "httpx", "structlog", "watcher.store"}
    assert not heavy & modules, sorted(heavy & modules)


def test_poll_imports_no_daemon_server_nats_or_prometheus(tmp_path: Path) -> None:
    with running_sim(companies=20, ctas=0, goals=0, seed=3, access_key="k") as sim:
        config = tmp_path / "watcher.toml"
        config.write_text(
            f'[gainsight]\nbase_url = "{sim.base_url}"\naccess_key_env = "GS_K"\n'
            '[rules]\npaths = []\n[[sources]]\nname = "companies"\nkind = "company"\n',
            encoding="utf-8",
        )
        code, modules = _modules(
            "--config", str(config), "poll", "companies", "--full", env={"GS_K": "k"}
        )
    assert code == 0
    assert "watcher.poll.engine" in modules  # the sweep ran in this process
    loaded = {m for m in modules if m.startswith(DAEMON_ONLY) or m.startswith("watcher.daemon")}
    assert not loaded, sorted(loaded)


def test_pydantic_plugins_are_off_unless_the_operator_set_the_variable() -> None:
    # Looking for plugins reads every installed package's metadata at the first model.
    assert _report("--help")["plugins"] == "__all__"
    assert _report("--help", env={"PYDANTIC_DISABLE_PLUGINS": ""})["plugins"] == ""


def test_the_cli_spells_the_outbox_states_as_the_store_does() -> None:
    from watcher.cli.deliveries import STATUSES
    from watcher.store.outbox import STATUSES as STORED

    assert STATUSES == STORED
