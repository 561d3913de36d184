"""Command sink: run a program with the event JSON on stdin, with a timeout.

Exit status 0 is success; a non-zero exit, a timeout or a program that cannot be
started is a failed attempt, retried per the schedule. The program runs in its own
process group: on a timeout the whole group (children it started included) is
killed, and so is whatever it leaves running when it exits - an attempt ends when
the program does, not when its last background child closes stderr. Only the last
64 KiB of stderr are kept.
The environment is minimal (``PATH``, ``HOME``, ``LANG``, ``LC_ALL``, ``TZ``,
``TMPDIR``, never the daemon's secrets) plus ``WATCHER_EVENT_ID``, ``WATCHER_RULE``
and ``WATCHER_SINK``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence

from watcher.delivery.base import Item, Preview, SendResult
from watcher.errors import RetryableDispatchError
from watcher.logging import redact

PASSED_ENV = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"})
#: At most this much of the program's stderr is kept (its end, for the error message).
MAX_STDERR = 64 * 1024
#: How long to wait for a killed program to be reaped and its stderr to close.
REAP_S = 5.0
EXIT_CHECK_S = 0.01


class CommandSink:
    type = "command"
    max_batch = 1

    def __init__(self, name: str, *, command: Sequence[str], timeout_s: float = 10.0) -> None:
        self.name = name
        self._command = tuple(command)
        self._timeout = timeout_s

    def preview(self, items: Sequence[Item]) -> Preview:
        return Preview(
            self.name,
            self.type,
            [{"argv": list(self._command), "stdin": i.event} for i in items],
        )

    async def send(self, items: Sequence[Item]) -> SendResult:
        (item,) = items
        where = f"command sink {self.name!r} ({self._command[0]})"
        env = {
            **{k: v for k, v in os.environ.items() if k in PASSED_ENV},
            "WATCHER_EVENT_ID": item.event_id,
            "WATCHER_RULE": item.rule_name,
            "WATCHER_SINK": self.name,
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,  # its own process group: a timeout kills all of it
            )
        except OSError as exc:
            raise RetryableDispatchError(
                f"{where}: cannot start the program ({exc.strerror or type(exc).__name__}); "
                "check the command path"
            ) from None
        if proc.stderr is None:  # asked for as a pipe above; asyncio always gives one
            raise RetryableDispatchError(f"{where}: the program's stderr could not be read")
        stderr = asyncio.create_task(_read_tail(proc.stderr, MAX_STDERR))
        try:
            async with asyncio.timeout(self._timeout):
                await _feed(proc, item.body.encode("utf-8"))
                await _exited(proc)
        except TimeoutError:
            raise RetryableDispatchError(
                f"{where}: still running after {self._timeout:g}s; killed, will retry"
            ) from None
        finally:
            # The attempt is over: whatever the program left behind (background children
            # holding its stderr) is killed with its process group.
            _kill_group(proc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), REAP_S)
            done, _ = await asyncio.wait({stderr}, timeout=REAP_S)
            if not done:
                stderr.cancel()
                await asyncio.gather(stderr, return_exceptions=True)
        if proc.returncode != 0:
            raw = stderr.result() if not stderr.cancelled() else b""
            tail = redact(raw.decode("utf-8", "replace").strip()[-300:])
            detail = f": {tail}" if tail else ""
            raise RetryableDispatchError(f"{where}: exited with status {proc.returncode}{detail}")
        return SendResult(status=0)

    async def aclose(self) -> None:
        return None


async def _feed(proc: asyncio.subprocess.Process, body: bytes) -> None:
    """Write the event to stdin and close it; a program that exits without reading
    it is fine (its exit status decides)."""
    if proc.stdin is None:  # asked for as a pipe; asyncio always gives one
        raise RetryableDispatchError("command sink: the program's stdin could not be written")
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(body)
        await proc.stdin.drain()
    proc.stdin.close()


async def _read_tail(stream: asyncio.StreamReader, limit: int) -> bytes:
    """Read ``stream`` to its end, keeping only its last ``limit`` bytes (the program
    never blocks on a full pipe; a flood never fills memory)."""
    kept = b""
    while chunk := await stream.read(65536):
        kept = (kept + chunk)[-limit:]
    return kept


async def _exited(proc: asyncio.subprocess.Process) -> None:
    """Until the program itself exits. (``Process.wait()`` also waits for its pipes to
    close, which a background child can hold open for ever.)"""
    while proc.returncode is None:  # noqa: ASYNC110 - asyncio has no exit-only event
        await asyncio.sleep(EXIT_CHECK_S)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
