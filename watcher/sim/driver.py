"""The mutation driver: random creates, updates and deletes at a steady rate on the
tenant's clock (a FakeClock makes it run instantly, so give tests a ``count``)."""

from __future__ import annotations

import asyncio

from watcher.sim.tenant import Tenant


async def drive_mutations(
    tenant: Tenant,
    per_minute: float,
    *,
    count: int | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Apply one random mutation every ``60 / per_minute`` seconds of ``tenant.clock``
    until ``count`` mutations were made or ``stop`` is set. Returns how many were made."""
    if per_minute <= 0:
        raise ValueError("mutations per minute must be positive")
    interval = 60.0 / per_minute
    made = 0
    while (count is None or made < count) and not (stop is not None and stop.is_set()):
        await tenant.clock.sleep(interval)
        if stop is not None and stop.is_set():
            break
        tenant.random_mutations(1)
        made += 1
    return made
