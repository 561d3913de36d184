"""One daemon per database (flock), and the sd_notify protocol over a real socket."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.daemon.lock import DaemonLock
from watcher.daemon.sdnotify import Notifier
from watcher.errors import StoreLockedError


def test_a_second_lock_on_the_same_database_fails_with_a_clear_error(tmp_path: Path) -> None:
    """The second daemon is told who holds the database and what to do."""
    db = tmp_path / "watcher.db"
    with DaemonLock(db):
        with pytest.raises(StoreLockedError) as info:
            DaemonLock(db).acquire()
        message = str(info.value)
        assert f"pid {os.getpid()}" in message
        assert str(db) in message
        assert "different [store] path" in message
    with DaemonLock(db):  # released: the next daemon may start
        pass


def test_locks_on_different_databases_do_not_conflict(tmp_path: Path) -> None:
    """Two daemons on two databases run side by side."""
    with DaemonLock(tmp_path / "a.db"), DaemonLock(tmp_path / "b.db"):
        pass


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    folder = tempfile.mkdtemp(prefix="wn", dir="/tmp")  # unix socket paths are short
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()
    os.unlink(path)
    os.rmdir(folder)


def test_notifier_sends_ready_status_watchdog_and_stopping(
    notify_socket: tuple[socket.socket, str],
) -> None:
    """Each call is one datagram in the sd_notify format."""
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("ready; polling 2 sources")
    assert sock.recv(4096) == b"READY=1\nSTATUS=ready; polling 2 sources"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.status("last poll companies/incremental ok\nat 16:00")
    assert sock.recv(4096) == b"STATUS=last poll companies/incremental ok at 16:00"
    assert notifier.stopping("stopping")
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=stopping"
    notifier.close()


def test_notifier_supports_abstract_socket_names() -> None:
    """``@name`` in NOTIFY_SOCKET means the abstract namespace."""
    name = f"watcher-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1"
        notifier.close()
    finally:
        sock.close()


def test_notifier_is_silent_without_notify_socket() -> None:
    """Outside systemd every call is a no-op."""
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert notifier.watchdog_interval is None


def test_notifier_survives_a_vanished_socket(tmp_path: Path) -> None:
    """A supervisor that went away never breaks the daemon: the send just fails."""
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.enabled
    assert not notifier.ready()
    assert not notifier.status("x")


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_pings_at_half_the_watchdog_timeout(
    env: dict[str, str], interval: float | None
) -> None:
    """WATCHDOG_USEC/2, only when the watchdog is meant for this process."""
    assert Notifier({"NOTIFY_SOCKET": "/run/x", **env}).watchdog_interval == interval
