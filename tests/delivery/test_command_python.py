"""Command and Python sinks: the event JSON goes in; failures and timeouts are retried."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.delivery import handlers
from tests.delivery.conftest import Harness, arr_change
from watcher.delivery.dispatcher import Dispatcher
from watcher.delivery.sinks.command import MAX_STDERR, _read_tail
from watcher.delivery.sinks.python import PythonSink
from watcher.errors import ConfigError

RULE = {"name": "all", "sinks": ["run"]}


def command(*argv: str, **extra: object) -> dict[str, object]:
    return {"run": {"type": "command", "command": list(argv), **extra}}


async def test_command_gets_the_event_json_on_stdin(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    out = tmp_path / "out.json"
    script = (
        f"import sys, os; open({str(out)!r}, 'w')"
        ".write(sys.stdin.read() + os.environ['WATCHER_RULE'])"
    )
    h = harness(command(sys.executable, "-c", script), RULE)
    (stored,) = h.commit(arr_change("C1", 100.0, 50.0))
    stats = await h.dispatcher.run_until_idle()
    assert stats.delivered == 1
    text = out.read_text()
    assert text.endswith("all")
    assert json.loads(text.removesuffix("all")) == stored


async def test_command_non_zero_exit_is_a_failed_attempt_with_its_stderr(
    harness: Callable[..., Harness],
) -> None:
    script = "import sys; sys.stderr.write('crm is down'); sys.exit(3)"
    h = harness(command(sys.executable, "-c", script), RULE)
    h.commit(arr_change("C1", 100.0, 50.0))
    stats = await h.dispatcher.run_until_idle()
    assert stats.failed == 1
    (row,) = h.dispatcher.outbox.list_deliveries()
    assert row.status == "pending"
    assert "exited with status 3: crm is down" in (row.last_error or "")


async def test_command_timeout_kills_it_and_counts_as_failed(
    harness: Callable[..., Harness],
) -> None:
    h = harness(command(sys.executable, "-c", "import time; time.sleep(30)", timeout_s=0.3), RULE)
    h.commit(arr_change("C1", 100.0, 50.0))
    stats = await h.dispatcher.run_until_idle()
    assert stats.failed == 1
    (row,) = h.dispatcher.outbox.list_deliveries()
    assert "still running after 0.3s; killed" in (row.last_error or "")


@pytest.mark.parametrize("func", ["record", "record_async"])
async def test_python_sink_calls_sync_and_async_functions(
    harness: Callable[..., Harness], func: str
) -> None:
    handlers.received.clear()
    h = harness({"run": {"type": "python", "callable": f"tests.delivery.handlers:{func}"}}, RULE)
    (stored,) = h.commit(arr_change("C1", 100.0, 50.0))
    assert (await h.dispatcher.run_until_idle()).delivered == 1
    assert handlers.received == [stored]


async def test_python_sink_exception_is_a_failed_attempt(harness: Callable[..., Harness]) -> None:
    h = harness({"run": {"type": "python", "callable": "tests.delivery.handlers:explode"}}, RULE)
    h.commit(arr_change("C1", 100.0, 50.0))
    assert (await h.dispatcher.run_until_idle()).failed == 1
    (row,) = h.dispatcher.outbox.list_deliveries()
    assert "raised ValueError: cannot handle evt-C1-0" in (row.last_error or "")


async def test_python_sink_timeout_is_a_failed_attempt(harness: Callable[..., Harness]) -> None:
    sinks = {
        "run": {"type": "python", "callable": "tests.delivery.handlers:hang", "timeout_s": 0.2}
    }
    h = harness(sinks, RULE)
    h.commit(arr_change("C1", 100.0, 50.0))
    assert (await h.dispatcher.run_until_idle()).failed == 1
    (row,) = h.dispatcher.outbox.list_deliveries()
    assert row.status == "pending"
    assert "did not return within 0.2s" in (row.last_error or "")


async def test_a_crash_mid_attempt_loses_nothing_and_the_repeat_has_the_same_id(
    harness: Callable[..., Harness],
) -> None:
    handlers.received.clear()
    sinks = {"run": {"type": "python", "callable": "tests.delivery.handlers:hang"}}
    h = harness(sinks, RULE)
    (stored,) = h.commit(arr_change("C1", 100.0, 50.0))
    running = asyncio.ensure_future(h.dispatcher.run_until_idle())
    for _ in range(20):
        await asyncio.sleep(0)
    running.cancel()  # the process dies while the handler runs
    with pytest.raises(asyncio.CancelledError):
        await running
    (row,) = h.dispatcher.outbox.list_deliveries()
    assert row.status == "pending"
    restarted = Dispatcher(
        h.db,
        {"run": PythonSink("run", func=handlers.record, spec="tests.delivery.handlers:record")},
        clock=h.clock,
    )
    assert (await restarted.run_until_idle()).delivered == 1
    assert [e["id"] for e in handlers.received] == [stored["id"]]


def test_unknown_python_callable_is_a_config_error(harness: Callable[..., Harness]) -> None:
    with pytest.raises(
        ConfigError, match=r"sinks\.run\.callable: cannot import module 'no_such\.mod'"
    ):
        harness({"run": {"type": "python", "callable": "no_such.mod:f"}}, RULE)


@pytest.mark.parametrize(
    ("source", "raised"),
    [
        ("def broken(:\n", "SyntaxError"),
        ("import os\nos.environ['NOT_SET_ANYWHERE_X']\n", "KeyError"),
    ],
)
def test_a_python_sink_module_that_fails_to_import_is_a_config_error(
    harness: Callable[..., Harness],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    raised: str,
) -> None:
    """A handler module that raises while importing is a config error naming the setting
    (so `watcher check` exits 2 and a SIGHUP reload is rejected, not the daemon killed)."""
    (tmp_path / "broken_handler_mod.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as err:
        harness({"run": {"type": "python", "callable": "broken_handler_mod:f"}}, RULE)
    assert "sinks.run.callable: importing module 'broken_handler_mod' failed" in str(err.value)
    assert raised in str(err.value)
    sys.modules.pop("broken_handler_mod", None)


async def test_command_does_not_inherit_the_daemons_secrets(
    harness: Callable[..., Harness], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_WEBHOOK_SECRET", "whsec_do-not-leak")
    out = tmp_path / "env.json"
    script = f"import json, os; json.dump(dict(os.environ), open({str(out)!r}, 'w'))"
    h = harness(command(sys.executable, "-c", script), RULE)
    h.commit(arr_change("C1", 100.0, 50.0))
    assert (await h.dispatcher.run_until_idle()).delivered == 1
    env = json.loads(out.read_text())
    assert "CRM_WEBHOOK_SECRET" not in env
    assert env["WATCHER_SINK"] == "run"


def sink_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"sink-{name}"]


async def test_hung_sync_handlers_hold_only_their_own_bounded_threads_and_degrade_the_sink(
    harness: Callable[..., Harness],
) -> None:
    """Handlers that overrun keep their threads, but only the sink's own (``concurrency``
    of them, never asyncio's default pool); the sink says it is degraded, later attempts
    fail at once without a new thread, and all recovers when the handlers return."""
    handlers.release.clear()
    sinks = {
        "run": {
            "type": "python",
            "callable": "tests.delivery.handlers:block",
            "timeout_s": 0.2,
            "concurrency": 2,
        }
    }
    h = harness(sinks, RULE)
    sink = h.sinks["run"]
    assert isinstance(sink, PythonSink)
    try:
        assert sink.health() == "ok"
        h.commit(*(arr_change(f"C{i}", 100.0, 50.0) for i in range(8)))
        stats = await h.dispatcher.run_until_idle()
        assert stats.delivered == 0
        assert stats.failed >= 8
        assert len(sink_threads("run")) == 2
        assert sink.health().startswith("degraded: 2 handler call(s) still running")
        errors = {row.last_error or "" for row in h.dispatcher.outbox.list_deliveries()}
        assert any("all 2 handler threads are busy" in e for e in errors)
        # asyncio's default pool (the daemon's HTTP and store reads) is untouched
        assert await asyncio.wait_for(asyncio.to_thread(lambda: 42), 5) == 42
    finally:
        handlers.release.set()
    for thread in sink_threads("run"):
        thread.join(5)
    for _ in range(100):
        if sink.health() == "ok":
            break
        await asyncio.sleep(0.01)
    assert sink.health() == "ok"


def gone(pid: int) -> bool:
    """The process no longer runs (exited, or a zombie waiting for its parent)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


async def wait_gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_command_timeout_kills_the_whole_process_group_promptly(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    """A shell whose child sleeps: the timeout ends the attempt at once and the child
    is killed with it (it held the attempt 33 s and outlived it before)."""
    pidfile = tmp_path / "child.pid"
    script = f"sleep 33 & echo $! > {pidfile}; wait"
    h = harness(command("sh", "-c", script, timeout_s=0.5), RULE)
    h.commit(arr_change("C1", 100.0, 50.0))
    started = time.monotonic()
    stats = await h.dispatcher.run_until_idle()
    assert time.monotonic() - started < 10
    assert stats.failed >= 1
    (row,) = h.dispatcher.outbox.list_deliveries()
    assert "still running after 0.5s; killed" in (row.last_error or "")
    assert await wait_gone(int(pidfile.read_text()))


async def test_a_program_that_leaves_a_background_child_succeeds_once_and_the_child_is_killed(
    harness: Callable[..., Harness], tmp_path: Path
) -> None:
    """The program exits 0 leaving a child that holds stderr: one delivery (no timeout,
    no duplicate retry), and the leftover child does not outlive the attempt."""
    pidfile = tmp_path / "child.pid"
    script = f"cat > /dev/null; sleep 33 & echo $! > {pidfile}; exit 0"
    h = harness(command("sh", "-c", script, timeout_s=3), RULE)
    h.commit(arr_change("C1", 100.0, 50.0))
    started = time.monotonic()
    stats = await h.dispatcher.run_until_idle()
    assert time.monotonic() - started < 2.5
    assert (stats.delivered, stats.failed) == (1, 0)
    assert await wait_gone(int(pidfile.read_text()))


async def test_command_stderr_is_kept_to_its_last_64_kib(
    harness: Callable[..., Harness],
) -> None:
    """A program flooding stderr (8 MB) is read to the end but only the tail is kept."""
    script = "import sys; sys.stderr.write('x' * 8_000_000 + 'the end'); sys.exit(4)"
    h = harness(command(sys.executable, "-c", script), RULE)
    h.commit(arr_change("C1", 100.0, 50.0))
    assert (await h.dispatcher.run_until_idle()).failed >= 1
    (row,) = h.dispatcher.outbox.list_deliveries()
    assert (row.last_error or "").endswith("exited with status 4: " + "x" * 293 + "the end")
    reader = asyncio.StreamReader()
    reader.feed_data(b"y" * 1_000_000 + b"tail")
    reader.feed_eof()
    kept = await _read_tail(reader, MAX_STDERR)
    assert len(kept) == MAX_STDERR
    assert kept.endswith(b"tail")
