"""A real ``nats-server -js`` on a loopback port, and a JetStream reader, for the tests.

The server binary comes from the Debian package ``nats-server`` (``.ci/run`` installs
it). Without it the tests fail, saying how to install it, so a missing install step
can never pass as green.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats

from tests.tools import require_program


def require_nats_server() -> str:
    return require_program(
        "nats-server", "/usr/sbin/nats-server", install="Debian: apt-get install nats-server"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """``nats-server -js`` with its JetStream files under ``store_dir``; start/stop/restart."""

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        token: str | None = None,
        config: str | None = None,
    ):
        self.binary = require_nats_server()
        self.store_dir = store_dir
        self.port = port or free_port()
        self.token = token
        self.config = config  # nats-server config file text, for settings without a flag
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        args = [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port)]
        args += ["-sd", str(self.store_dir)]
        if self.token:
            args += ["--auth", self.token]
        if self.config:
            path = self.store_dir.with_suffix(".conf")
            path.write_text(self.config)
            args += ["-c", str(path)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # wait for the process to listen, not for time
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("nats-server did not listen within 15 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@dataclass(frozen=True)
class Received:
    subject: str
    headers: dict[str, str]
    body: bytes
    stream_sequence: int


async def read_stream(
    url: str, stream: str, subject: str = ">", *, token: str | None = None
) -> list[Received]:
    """Every message of ``stream`` (an ordered, ephemeral JetStream consumer)."""
    nc = await nats.connect(url, token=token, allow_reconnect=False)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        total = info.state.messages
        out: list[Received] = []
        if total == 0:
            return out
        sub = await js.subscribe(subject, stream=stream, ordered_consumer=True)
        try:
            while len(out) < total:
                msg = await sub.next_msg(timeout=10)
                meta = msg.metadata
                out.append(
                    Received(msg.subject, dict(msg.headers or {}), msg.data, meta.sequence.stream)
                )
        finally:
            await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def stream_config(url: str, stream: str, *, token: str | None = None) -> Any:
    nc = await nats.connect(url, token=token, allow_reconnect=False)
    try:
        return (await nc.jetstream().stream_info(stream)).config
    finally:
        await nc.close()
