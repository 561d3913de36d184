"""Budget: sliding windows that never exceed the server's fixed windows, and priorities."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.clock import FakeClock
from watcher.gainsight import Budget, Priority

from .helpers import SteppedClock, settle


@pytest.mark.parametrize(
    ("per_minute", "calls", "expected_waits"),
    [
        (3, 3, [0, 0, 0]),
        (3, 4, [0, 0, 0, 61]),
        (2, 5, [0, 0, 61, 0, 61]),
        (1, 3, [0, 61, 61]),
    ],
)
async def test_minute_window_waits_until_the_oldest_send_leaves_the_window(
    per_minute: int, calls: int, expected_waits: list[float]
) -> None:
    """The (N+1)th call in a minute waits 60 s + 1 s margin after the oldest one."""
    clock = FakeClock()
    budget = Budget(per_minute, 10_000, clock)
    waits = [await budget.acquire(Priority.HIGH) for _ in range(calls)]
    assert waits == pytest.approx(expected_waits)
    assert budget.stats.calls == calls
    assert budget.stats.waits == sum(1 for w in expected_waits if w > 0)
    assert budget.stats.wait_seconds == pytest.approx(sum(expected_waits))


async def test_day_window_blocks_until_a_day_after_the_oldest_bucket() -> None:
    """Past per_day, the next call waits about a day (never less than 24 h)."""
    clock = FakeClock()
    budget = Budget(1000, 5, clock)
    for _ in range(5):
        assert await budget.acquire() == 0
    assert budget.used_last_day == 5
    waited = await budget.acquire()
    assert 86_400 <= waited <= 86_400 + 61 + 1
    assert budget.used_last_day == 1


async def test_day_window_releases_old_buckets_gradually() -> None:
    """Calls spread over the day free up one minute-bucket at a time."""
    clock = FakeClock()
    budget = Budget(1000, 4, clock)
    for _ in range(4):
        await budget.acquire()
        clock.advance(3600)
    # the first call was 4 h ago; its bucket frees ~20 h from now, not 24 h
    waited = await budget.acquire()
    assert 20 * 3600 <= waited <= 20 * 3600 + 62


@settings(max_examples=60, deadline=None)
@given(
    per_minute=st.integers(1, 6),
    gaps=st.lists(st.floats(0, 40, allow_nan=False), min_size=1, max_size=40),
)
async def test_no_sixty_second_interval_ever_holds_more_than_per_minute_sends(
    per_minute: int, gaps: list[float]
) -> None:
    """Whatever the server's window alignment, a fixed 60 s window never sees > N calls."""
    clock = FakeClock()
    budget = Budget(per_minute, 10**6, clock)
    times = []
    for gap in gaps:
        clock.advance(gap)
        await budget.acquire()
        times.append(clock.monotonic())
    for i, start in enumerate(times):
        in_window = [t for t in times[i:] if t < start + 60.0]
        assert len(in_window) <= per_minute


async def test_high_priority_waiters_always_go_before_low_ones() -> None:
    """Incremental (HIGH) callers that arrive after a queue of sweep (LOW) callers go first."""
    clock = SteppedClock()
    budget = Budget(1, 1000, clock)
    await budget.acquire()
    order: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        await budget.acquire(priority)
        order.append(name)

    tasks = [asyncio.create_task(take(f"low{i}", Priority.LOW)) for i in range(3)]
    await settle()
    tasks += [asyncio.create_task(take(f"high{i}", Priority.HIGH)) for i in range(2)]
    await settle()
    assert budget.waiting == 5
    for _ in range(5):
        await clock.advance(61)
    await asyncio.gather(*tasks)
    assert order == ["high0", "high1", "low0", "low1", "low2"]
    assert budget.stats.calls_high == 2
    assert budget.stats.calls_low == 4


async def test_a_steady_stream_of_high_calls_still_lets_low_through_when_capacity_allows() -> None:
    """Priority orders waiters; it does not reserve capacity nobody is asking for."""
    clock = FakeClock()
    budget = Budget(5, 1000, clock)
    await budget.acquire(Priority.HIGH)
    assert await budget.acquire(Priority.LOW) == 0


async def test_rate_limited_pause_holds_every_caller() -> None:
    """After a 429 the pause applies to all sources sharing the budget."""
    clock = FakeClock()
    budget = Budget(100, 1000, clock)
    budget.note_rate_limited(30)
    assert budget.stats.rate_limited == 1
    assert budget.delay() == pytest.approx(30)
    assert await budget.acquire(Priority.HIGH) == pytest.approx(30)
    assert await budget.acquire(Priority.LOW) == 0


async def test_a_cancelled_waiter_leaves_the_queue_and_wakes_the_next() -> None:
    """Cancelling the head waiter must not block the ones behind it."""
    clock = SteppedClock()
    budget = Budget(1, 1000, clock)
    await budget.acquire()
    first = asyncio.create_task(budget.acquire(Priority.HIGH))
    await settle()
    second = asyncio.create_task(budget.acquire(Priority.LOW))
    await settle()
    first.cancel()
    await settle()
    assert budget.waiting == 1
    await clock.advance(61)
    assert await second == pytest.approx(61)
    assert first.cancelled()


def test_budget_rejects_non_positive_limits() -> None:
    with pytest.raises(ValueError, match="positive"):
        Budget(0, 10, FakeClock())


async def test_full_sweeps_leave_a_share_of_each_minute_to_incremental_polls() -> None:
    """LOW callers stop at per_minute minus the reserve; a HIGH caller then goes at once."""
    clock = FakeClock()
    budget = Budget(100, 10**6, clock)
    assert budget.reserved_high == 10
    low_waits = [await budget.acquire(Priority.LOW) for _ in range(90)]
    assert low_waits == [0.0] * 90
    assert budget.delay(Priority.LOW) > 0
    assert await budget.acquire(Priority.HIGH) == 0.0
    # the 91st LOW call waits for the window to slide, not for HIGH callers
    assert await budget.acquire(Priority.LOW) == pytest.approx(61.0)


async def test_a_budget_of_one_per_minute_reserves_nothing() -> None:
    clock = FakeClock()
    budget = Budget(1, 10**6, clock)
    assert budget.reserved_high == 0
    assert await budget.acquire(Priority.LOW) == 0.0
