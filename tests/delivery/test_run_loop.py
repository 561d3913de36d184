"""The dispatcher's daemon loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.delivery.conftest import Harness


async def test_run_with_no_sinks_waits_for_stop_and_returns(
    harness: Callable[..., Harness],
) -> None:
    """A config without sinks still runs the loop: it idles until stopped."""
    dispatcher = harness({}).dispatcher
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.sleep(0)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert task.exception() is None
