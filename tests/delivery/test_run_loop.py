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


async def test_a_store_that_cannot_be_read_is_logged_in_one_line_and_the_loop_goes_on(
    harness: Callable[..., Harness],
) -> None:
    """A damaged or unreadable store under the running daemon: one clear line per round
    (``dispatcher.store_error``, no traceback), and the loop keeps running; it used to
    crash the dispatcher (a traceback in the log, seen as a flaky store-fault test)."""
    from structlog.testing import capture_logs

    h = harness({"crm": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}})
    h.db.conn.execute("DROP TABLE pauses")  # every round's first read now fails
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(h.dispatcher.run(stop, poll_interval=0.01))
        for _ in range(1000):
            await asyncio.sleep(0)
            if sum(e["event"] == "dispatcher.store_error" for e in logs) >= 2:
                break
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    errors = [e for e in logs if e["event"] == "dispatcher.store_error"]
    assert len(errors) >= 2
    assert "read pauses" in errors[0]["error"]
    assert all("exc_info" not in e for e in errors)
