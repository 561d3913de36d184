"""The sd_notify protocol: READY=1, WATCHDOG=1, STATUS=..., STOPPING=1.

Datagrams to the unix socket named by ``$NOTIFY_SOCKET`` (a path, or an abstract
name when it starts with ``@``). Silent - every call a no-op - when the variable is
unset, so the daemon runs the same outside systemd. Send errors are swallowed after
one warning: a missing supervisor must never stop the daemon.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from watcher.logging import get_logger

log = get_logger("watcher.daemon.sdnotify")


class Notifier:
    """Talks to systemd (or to nothing when ``NOTIFY_SOCKET`` is unset)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = None
        if raw.startswith("@"):
            self.address = "\0" + raw[1:]
        elif raw.startswith("/"):
            self.address = raw
        self.watchdog_interval = _watchdog_interval(env)
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` as one datagram; True when it was sent."""
        if self.address is None:
            return False
        payload = "\n".join(lines).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, self.address)
        except OSError as exc:
            self.close()
            if not self._warned:
                log.warning("sdnotify.failed", error=exc.strerror or str(exc))
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_one_line(text)}")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of ``WatchdogSec`` (``$WATCHDOG_USEC``).

    ``$WATCHDOG_PID``, when set, must be this process, else the watchdog is not ours.
    """
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2
