"""Command sink: run a program with the event JSON on stdin, with a timeout.

Exit status 0 is success; a non-zero exit, a timeout (the process is killed) or a
program that cannot be started is a failed attempt, retried per the schedule.
The environment is minimal (``PATH``, ``HOME``, ``LANG``, ``LC_ALL``, ``TZ``,
``TMPDIR``, never the daemon's secrets) plus ``WATCHER_EVENT_ID``, ``WATCHER_RULE``
and ``WATCHER_SINK``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence

from watcher.delivery.base import Item, Preview, SendResult
from watcher.errors import RetryableDispatchError
from watcher.logging import redact

PASSED_ENV = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"})


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
            )
        except OSError as exc:
            raise RetryableDispatchError(
                f"{where}: cannot start the program ({exc.strerror or type(exc).__name__}); "
                "check the command path"
            ) from None
        try:
            _, stderr = await asyncio.wait_for(
                proc.communicate(item.body.encode("utf-8")), self._timeout
            )
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise RetryableDispatchError(
                f"{where}: still running after {self._timeout:g}s; killed, will retry"
            ) from None
        if proc.returncode != 0:
            tail = redact(stderr.decode("utf-8", "replace").strip()[-300:])
            detail = f": {tail}" if tail else ""
            raise RetryableDispatchError(f"{where}: exited with status {proc.returncode}{detail}")
        return SendResult(status=0)

    async def aclose(self) -> None:
        return None
