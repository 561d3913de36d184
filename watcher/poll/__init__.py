"""The poll engine: full sweeps, incremental reads, delete-log reads."""

from watcher.poll.engine import MIN_HELD_DELETES, Poller, PollResult
from watcher.poll.source import RecordSource

__all__ = ["MIN_HELD_DELETES", "PollResult", "Poller", "RecordSource"]
