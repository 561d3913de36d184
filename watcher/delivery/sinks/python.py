"""Python sink: call ``package.module:function`` with the event dict, in-process.

Sync functions run in a worker thread, async ones on the loop; both under the
sink's timeout. An exception (or the timeout) is a failed attempt. A sync function
that overruns keeps running in its thread; the attempt is still counted as failed.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
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


class PythonSink:
    type = "python"
    max_batch = 1

    def __init__(
        self, name: str, *, func: Callable[..., Any], spec: str, timeout_s: float = 10.0
    ) -> None:
        self.name = name
        self._func = func
        self._spec = spec
        self._timeout = timeout_s

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
                await asyncio.wait_for(asyncio.to_thread(self._func, item.event), self._timeout)
        except TimeoutError:
            raise RetryableDispatchError(
                f"{where}: did not return within {self._timeout:g}s; will retry"
            ) from None
        except Exception as exc:  # noqa: BLE001  # the handler's own errors: a failed attempt
            message = redact(str(exc))[:300]
            raise RetryableDispatchError(
                f"{where}: raised {type(exc).__name__}: {message}"
            ) from None
        return SendResult()

    async def aclose(self) -> None:
        return None
