"""Python sink: call ``package.module:function`` with the event dict, in-process.

Sync functions run in the sink's own bounded set of threads (never asyncio's default
pool, which the daemon's HTTP server and store reads use), async ones on the loop;
both under the sink's timeout. An exception (or the timeout) is a failed attempt.

A thread cannot be stopped: a sync function that overruns keeps its thread until it
returns. Such a thread is *stuck*; while any is, the sink reports itself degraded
(``/readyz``, ``/metrics``), and once all ``threads`` are stuck an attempt fails at
once instead of starting another thread. Handler threads are daemon threads, so a
stuck one never holds up the daemon's exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import threading
from collections.abc import Callable, Sequence
from typing import Any

from watcher.delivery.base import Item, Preview, SendResult
from watcher.errors import ConfigError, RetryableDispatchError
from watcher.logging import redact


def import_callable(spec: str, setting: str) -> Callable[..., Any]:
    """``"pkg.mod:func"`` -> the function; ConfigError saying what is wrong."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{setting}: cannot import module {module_name!r} ({exc}); "
            "install it or fix the callable"
        ) from None
    except Exception as exc:  # noqa: BLE001  # user code runs on import: any error is a bad setting
        raise ConfigError(
            f"{setting}: importing module {module_name!r} failed ({type(exc).__name__}: "
            f"{redact(str(exc))[:200]}); fix the module"
        ) from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise ConfigError(f"{setting}: module {module_name!r} has no function {attr!r}")
    return func  # type: ignore[no-any-return]  # callable() narrowed it


class ThreadsFull(Exception):
    """Every handler thread of the sink is busy (stuck handlers)."""


class HandlerThreads:
    """At most ``size`` handler calls in their own daemon threads; counts stuck ones."""

    def __init__(self, name: str, size: int) -> None:
        self._name = name
        self._size = size
        self.busy = 0
        self.stuck = 0

    async def call(self, func: Callable[..., Any], arg: Any, limit_s: float) -> None:
        """Run ``func(arg)`` in a thread; TimeoutError after ``limit_s`` (the thread is
        left to finish and counted stuck until it does); ThreadsFull when full."""
        if self.busy >= self._size:
            raise ThreadsFull(
                f"all {self._size} handler threads are busy ({self.stuck} past the timeout)"
            )
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        state = {"timed_out": False}

        def finished(error: BaseException | None) -> None:
            self.busy -= 1
            if state["timed_out"]:
                self.stuck -= 1
            if not done.done():
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

        def run() -> None:
            error: BaseException | None = RuntimeError("the handler ended the thread")
            try:
                func(arg)
                error = None
            except Exception as exc:  # noqa: BLE001  # handed to the awaiting attempt
                error = exc
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is closed: daemon stopped
                    loop.call_soon_threadsafe(finished, error)

        self.busy += 1
        thread = threading.Thread(target=run, name=f"sink-{self._name}", daemon=True)
        thread.start()
        try:
            await asyncio.wait_for(asyncio.shield(done), limit_s)
        except TimeoutError:
            state["timed_out"] = True
            self.stuck += 1
            raise
        finally:
            if not done.done():  # an overrun or a cancelled attempt: nobody awaits it now
                done.add_done_callback(lambda f: f.cancelled() or f.exception())


class PythonSink:
    type = "python"
    max_batch = 1

    def __init__(
        self,
        name: str,
        *,
        func: Callable[..., Any],
        spec: str,
        timeout_s: float = 10.0,
        threads: int = 4,
    ) -> None:
        self.name = name
        self._func = func
        self._spec = spec
        self._timeout = timeout_s
        self._threads = HandlerThreads(name, threads)

    def health(self) -> str:
        """``"ok"``, or why the sink is degraded (handler threads that overran)."""
        stuck = self._threads.stuck
        if not stuck:
            return "ok"
        return (
            f"degraded: {stuck} handler call(s) still running past the {self._timeout:g}s "
            "timeout; fix the handler (it blocks) and restart watcher"
        )

    def preview(self, items: Sequence[Item]) -> Preview:
        return Preview(
            self.name, self.type, [{"call": self._spec, "event": i.event} for i in items]
        )

    async def send(self, items: Sequence[Item]) -> SendResult:
        (item,) = items
        where = f"python sink {self.name!r} ({self._spec})"
        try:
            if inspect.iscoroutinefunction(self._func):
                await asyncio.wait_for(self._func(item.event), self._timeout)
            else:
                await self._threads.call(self._func, item.event, self._timeout)
        except TimeoutError:
            raise RetryableDispatchError(
                f"{where}: did not return within {self._timeout:g}s; will retry"
            ) from None
        except ThreadsFull as exc:
            raise RetryableDispatchError(f"{where}: {exc}; will retry") from None
        except Exception as exc:  # noqa: BLE001  # the handler's own errors: a failed attempt
            message = redact(str(exc))[:300]
            raise RetryableDispatchError(
                f"{where}: raised {type(exc).__name__}: {message}"
            ) from None
        return SendResult()

    async def aclose(self) -> None:
        return None
