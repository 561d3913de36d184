"""The fast lane's schedule maths (pure: no I/O, no clock).

A source with ``poll_every`` reads its incremental changes every ``poll_every``
seconds instead of by cron, and its delete feed every :data:`DELETE_EVERY` rounds
(two calls a round would put two fast sources at 24 of the 25 calls a minute the
fast lane may spend; one delete read every second round keeps it at 18 and deletes
within ~20 s). While rounds find nothing the interval stretches by
:data:`STRETCH` a round up to ``poll_every_max``; the first round that finds a
change snaps it back to ``poll_every``. Tested with a table in
``tests/daemon/test_fastlane.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The delete feed is read on every DELETE_EVERY-th round of the fast lane.
DELETE_EVERY = 2
#: How much longer each round that found nothing makes the next wait.
STRETCH = 1.5


@dataclass(frozen=True)
class Lane:
    """One source's fast lane: its shortest and longest interval and the current one."""

    every_s: float
    max_s: float
    interval_s: float

    @classmethod
    def start(cls, every_s: float, max_s: float) -> Lane:
        return cls(every_s, max(every_s, max_s), every_s)

    def after_round(self, changed: bool) -> Lane:
        """The lane after a round: back to ``every_s`` on a change, else stretched."""
        if changed:
            return Lane(self.every_s, self.max_s, self.every_s)
        return Lane(self.every_s, self.max_s, min(self.max_s, self.interval_s * STRETCH))

    def wait_s(self, mode: str) -> float:
        """Seconds from a read's start to the next read of ``mode``."""
        return self.interval_s * (DELETE_EVERY if mode == "delete_log" else 1)


def calls_per_minute(every_s: float, *, sources: int = 1) -> float:
    """API calls a minute the fast lanes of ``sources`` sources spend when idle at
    ``every_s`` (one call per incremental read, one per delete read)."""
    return sources * (60.0 / every_s) * (1 + 1 / DELETE_EVERY)
