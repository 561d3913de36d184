"""A clock running faster than real time, shared by the benchmarks that compress hours."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta


class ScaledClock:
    """Wall and monotonic time running ``scale`` times faster than real time."""

    def __init__(self, scale: float, start: datetime | None = None) -> None:
        self.scale = scale
        self._start = start or datetime.now(UTC).replace(second=50, microsecond=0)
        self._t0 = time.monotonic()

    def _elapsed(self) -> float:
        return (time.monotonic() - self._t0) * self.scale

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed())

    def monotonic(self) -> float:
        return 1000.0 + self._elapsed()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)
