"""One daemon per database: an exclusive ``flock`` on ``<database>.lock``.

The kernel drops the lock when the process dies, so a crash never leaves a stale
lock behind. The file holds the owner's pid for the error message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from watcher.errors import StoreError, StoreLockedError


class DaemonLock:
    """``with DaemonLock(db_path):`` holds the lock; a second holder gets a clear error."""

    def __init__(self, db_path: str | Path) -> None:
        self.path = Path(f"{db_path}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(
                f"cannot create the daemon lock {str(self.path)!r} "
                f"({exc.strerror}); check that the [store] path's folder is writable"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_pid(fd)
            os.close(fd)
            who = f" (pid {owner})" if owner else ""
            raise StoreLockedError(
                f"another watcher daemon{who} is already running on "
                f"{str(self.path.with_suffix(''))!r}; stop it first, or give this one "
                "a different [store] path"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def holder(db_path: str | Path) -> int | None:
    """The pid of the daemon holding ``<database>.lock``, or ``None`` when none runs.

    Read-only: takes a shared lock for an instant only when nobody holds it, and never
    creates the file.
    """
    path = Path(f"{db_path}.lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(
            f"cannot read the daemon lock {str(path)!r} ({exc.strerror}); run this as the "
            "daemon's user or as root"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
