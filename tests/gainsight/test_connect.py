"""``watcher check --connect`` and the config -> client factory."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from watcher.clock import FakeClock
from watcher.config import WatcherConfig, parse_config
from watcher.errors import AuthError, SecretError, TransientError
from watcher.gainsight import check_connection, open_client

from .helpers import KEY, envelope, json_response


def config(base_url: str = "https://acme.gainsightcloud.com", **gs: Any) -> WatcherConfig:
    return parse_config(
        {"gainsight": {"base_url": base_url, "access_key_env": "GS_TEST_KEY", **gs}}
    )


ENV = {"GS_TEST_KEY": KEY}


def test_connect_reports_the_host_and_request_id(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response(200, envelope({"records": []}, requestId="rid-c"))

    message = check_connection(
        config(), base_dir=tmp_path, environ=ENV, transport=httpx.MockTransport(handler)
    )
    assert message == "reached https://acme.gainsightcloud.com (request id rid-c)"
    assert seen[0].headers["accesskey"] == KEY


def test_connect_with_a_rejected_key_says_which_setting_to_check(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return json_response(401, envelope(None, result=False, errorCode="GS_APIG_2401"))

    with pytest.raises(AuthError, match="access_key_env") as info:
        check_connection(
            config(), base_dir=tmp_path, environ=ENV, transport=httpx.MockTransport(handler)
        )
    assert KEY not in str(info.value)


def test_connect_reads_the_key_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "gs.key").write_text(KEY + "\n")
    cfg = parse_config(
        {"gainsight": {"base_url": "https://a.gainsightcloud.com", "access_key_file": "gs.key"}}
    )

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accesskey"] == KEY
        return json_response(200, envelope([]))

    assert check_connection(
        cfg, base_dir=tmp_path, environ={}, transport=httpx.MockTransport(handler)
    ).startswith("reached")


def test_connect_without_the_key_variable_is_a_secret_error(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="GS_TEST_KEY"):
        check_connection(config(), base_dir=tmp_path, environ={})


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_connect_to_an_unreachable_host_says_so(tmp_path: Path, closed_port: int) -> None:
    with pytest.raises(TransientError, match="not answering") as info:
        check_connection(config(f"http://127.0.0.1:{closed_port}"), base_dir=tmp_path, environ=ENV)
    assert "cannot reach" in str(info.value)
    assert KEY not in str(info.value)


def test_connect_to_a_silent_host_times_out(tmp_path: Path, silent_port: int) -> None:
    cfg = config(f"http://127.0.0.1:{silent_port}", timeout_s=0.2)
    with pytest.raises(TransientError, match=r"within 0.2s"):
        check_connection(cfg, base_dir=tmp_path, environ=ENV)


async def test_open_client_builds_a_budget_from_config_and_keeps_timeouts_on(
    tmp_path: Path,
) -> None:
    cfg = config(requests_per_minute=7, requests_per_day=70, timeout_s=3)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.extensions["timeout"]["read"] == 3
        return json_response(200, envelope([]))

    async with open_client(
        cfg,
        clock=FakeClock(),
        base_dir=tmp_path,
        environ=ENV,
        transport=httpx.MockTransport(handler),
    ) as client:
        await client.ping()
        assert client.budget.per_minute == 7
        assert client.budget.per_day == 70
        assert client.budget.stats.calls == 1
        assert client.max_retries == 5


def test_watcher_check_connect_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI prints what it reached, or exits 1 naming the key setting (never the key)."""
    from watcher.cli import main
    from watcher.testing.sim import running_sim

    with running_sim(companies=3, access_key="sim-key-1234") as sim:
        cfg = tmp_path / "watcher.toml"
        cfg.write_text(
            f'[gainsight]\nbase_url = "{sim.base_url}"\naccess_key_env = "GS_CLI_KEY"\n'
            "[rules]\npaths = []\n"
        )
        monkeypatch.setenv("GS_CLI_KEY", "sim-key-1234")
        assert main(["--config", str(cfg), "check", "--connect"]) == 0
        out = capsys.readouterr().out
        assert f"ok: connect: reached {sim.base_url}" in out
        monkeypatch.setenv("GS_CLI_KEY", "wrong-key-5678")
        assert main(["--config", str(cfg), "check", "--connect"]) == 1  # a failed request
        err = capsys.readouterr().err
    assert "access_key_env" in err
    assert "wrong-key-5678" not in err
