"""`watcher sim` as a real process: starts fast with 100k companies, serves, stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from watcher.cli import build_parser


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "watcher", "sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def base_url(proc: subprocess.Popen[str]) -> str:
    """Read the banner line; remember it on the process for later assertions."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.banner = line  # type: ignore[attr-defined]
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert match, line
    return match.group(0)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=15)
    return proc.returncode, out, err


@pytest.mark.slow
def test_100k_companies_start_in_seconds_and_serve_5000_record_pages() -> None:
    began = time.monotonic()
    proc = start("--companies", "100000", "--ctas", "2500", "--goals", "300", "--seed", "1")
    try:
        url = base_url(proc)
        started = time.monotonic() - began
        body = {
            "select": ["Gsid", "Name", "Arr", "Stage", "ModifiedDate"],
            "limit": 5000,
            "offset": 95000,
        }
        t0 = time.monotonic()
        reply = httpx.post(
            f"{url}/v1/data/objects/query/Company",
            json=body,
            headers={"accesskey": "sim-key"},
            timeout=30,
        )
        page_seconds = time.monotonic() - t0
        assert reply.status_code == 200
        assert len(reply.json()["data"]["records"]) == 5000
    finally:
        code, out, err = stop(proc)
    assert started < 8, f"startup took {started:.1f}s"
    # 100 requests/min means 0.6 s per call; a page must cost far less than that.
    assert page_seconds < 0.6, f"a 5000-record page took {page_seconds:.2f}s"
    assert code == 0, err
    assert "stopped" in out


def test_key_from_environment_is_used_and_never_printed() -> None:
    proc = start(
        "--companies",
        "5",
        "--ctas",
        "1",
        "--goals",
        "1",
        env={"GAINSIGHT_ACCESS_KEY": "env-secret-42"},
    )
    try:
        url = base_url(proc)
        ok = httpx.post(
            f"{url}/v2/cockpit/cta/list", json={}, headers={"Accesskey": "env-secret-42"}
        )
        default = httpx.post(
            f"{url}/v2/cockpit/cta/list", json={}, headers={"Accesskey": "sim-key"}
        )
        assert (ok.status_code, default.status_code) == (200, 401)
    finally:
        code, out, err = stop(proc, signal.SIGINT)
    assert code == 0
    assert "env-secret-42" not in out + err
    assert "access key from $GAINSIGHT_ACCESS_KEY" in proc.banner  # type: ignore[attr-defined]


def test_mutation_driver_runs_in_the_cli() -> None:
    proc = start("--companies", "20", "--ctas", "5", "--goals", "2", "--mutations-per-min", "6000")
    try:
        url = base_url(proc)
        deadline = time.monotonic() + 10
        changes: list[object] = []
        while time.monotonic() < deadline and not changes:
            reply = httpx.get(f"{url}/__sim/changes", headers={"Accesskey": "sim-key"})
            changes = reply.json()["data"]["changes"]
            time.sleep(0.05)  # waiting on a separate real process, not on our own clock
        assert changes
    finally:
        code, _, err = stop(proc)
    assert code == 0, err


def test_busy_port_is_a_clear_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "watcher", "sim", "--port", str(port), "--companies", "1"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_argument_validation() -> None:
    parser = build_parser()
    args = parser.parse_args(["sim", "--port", "0", "--companies", "3"])
    assert (args.port, args.companies, args.host, args.seed) == (0, 3, "127.0.0.1", 1)
    with pytest.raises(SystemExit):
        parser.parse_args(["sim", "--companies", "-1"])
    from watcher.cli import main

    assert main(["sim", "--mutations-per-min", "-5"]) == 2


def test_in_process_run_answers_and_stops_on_sigterm(capsys: pytest.CaptureFixture[str]) -> None:
    """`watcher sim` in this process: it serves, and SIGTERM ends it with exit code 0."""
    import socket
    import threading

    from watcher.cli import main

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    answered: list[int] = []

    def poke() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                reply = httpx.post(
                    f"http://127.0.0.1:{port}/v1/data/objects/query/Company",
                    json={"select": ["Gsid"], "limit": 2},
                    headers={"Accesskey": "cli-key"},
                )
            except httpx.TransportError:
                time.sleep(0.02)  # the server in this process is still starting
                continue
            answered.append(len(reply.json()["data"]["records"]))
            break
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=poke)
    thread.start()
    code = main(["sim", "--port", str(port), "--companies", "3", "--access-key", "cli-key",
                 "--mutations-per-min", "1"])  # fmt: skip
    thread.join()
    out = capsys.readouterr().out
    assert code == 0
    assert answered == [2]
    assert "access key from --access-key" in out
    assert "cli-key" not in out
    assert "watcher sim: stopped" in out
