"""Webhook headers whose values are secrets (issue 12): ``headers_env`` /
``headers_file`` are sent, checked by ``watcher check``, never printed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.delivery.conftest import Harness, arr_change
from watcher.cli import main
from watcher.config import parse_config
from watcher.errors import ConfigError
from watcher.testing.receivers import WebhookReceiver

AUTH = "Bearer crm-api-token-0123456789"
TENANT = "tenant-key-9876543210"
RULE = {"name": "all", "sinks": ["crm"]}


async def test_secret_headers_are_sent(
    harness: Callable[..., Harness], webhook: WebhookReceiver, tmp_path: Path
) -> None:
    (tmp_path / "tenant").write_text(TENANT + "\n")
    sinks = {
        "crm": {
            "type": "webhook",
            "url": webhook.url,
            "headers": {"X-Plain": "visible"},
            "headers_env": {"Authorization": "CRM_AUTH"},
            "headers_file": {"X-Tenant-Key": str(tmp_path / "tenant")},
        }
    }
    h = harness(sinks, RULE, environ={"CRM_AUTH": AUTH})
    h.commit(arr_change("C1", 100.0, 50.0))
    assert (await h.dispatcher.run_until_idle()).delivered == 1
    (request,) = webhook.received
    assert request.headers["authorization"] == AUTH
    assert request.headers["x-tenant-key"] == TENANT
    assert request.headers["x-plain"] == "visible"


def base(**crm: object) -> dict[str, object]:
    return {
        "gainsight": {"base_url": "https://acme.gainsightcloud.com", "access_key_env": "K"},
        "sinks": {"crm": {"type": "webhook", "url": "https://crm.example/hook", **crm}},
    }


def test_a_header_given_twice_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'authorization' given more than once"):
        parse_config(
            base(headers={"Authorization": "x"}, headers_env={"authorization": "CRM_AUTH"})
        )


CONFIG = """
[gainsight]
base_url = "https://acme.gainsightcloud.com"
access_key_env = "GS_KEY"

[store]
path = "w.db"

[rules]
paths = ["rules.toml"]

[[sources]]
name = "companies"
kind = "company"

[sinks.crm]
type = "webhook"
url = "https://crm.example/hook"
headers_env = { Authorization = "CRM_AUTH" }
headers_file = { X-Tenant-Key = "tenant" }
"""

RULES = """
[[rules]]
name = "all"
sources = ["companies"]
on = ["updated"]
sinks = ["crm"]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "watcher.toml").write_text(CONFIG)
    (tmp_path / "rules.toml").write_text(RULES)
    (tmp_path / "tenant").write_text(TENANT)
    monkeypatch.setenv("GS_KEY", "gs-key-0123456789")
    monkeypatch.setenv("CRM_AUTH", AUTH)
    return tmp_path


def test_rules_test_never_prints_secret_header_values(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event_file = project / "event.json"
    event_file.write_text(json.dumps(arr_change("C1", 1000.0, 800.0)))
    config = str(project / "watcher.toml")
    assert main(["--config", config, "rules", "test", "--event", str(event_file)]) == 0
    out = capsys.readouterr().out
    assert AUTH not in out
    assert TENANT not in out
    assert '"Authorization": "<secret from $CRM_AUTH>"' in out
    assert "<secret from file 'tenant'>" in out


def test_check_reads_secret_headers_naming_the_setting_never_the_value(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = str(project / "watcher.toml")
    assert main(["--config", config, "check"]) == 0
    capsys.readouterr()
    monkeypatch.delenv("CRM_AUTH")
    (project / "tenant").unlink()
    assert main(["--config", config, "check"]) == 2
    err = capsys.readouterr().err
    assert "sinks.crm.headers_env.Authorization: environment variable CRM_AUTH" in err
    assert "sinks.crm.headers_file.X-Tenant-Key: cannot read file" in err
    monkeypatch.setenv("CRM_AUTH", "Bearer x\nInjected: yes")
    (project / "tenant").write_text(TENANT)
    assert main(["--config", config, "check"]) == 2
    err = capsys.readouterr().err
    assert "the value has a line break" in err
    assert "Injected" not in err
