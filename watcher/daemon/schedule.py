"""Schedule maths for ``watcher run`` (pure: no I/O, no clock, no logging).

A *job* is one poll mode of one source (``companies``/``incremental``) with its
cron in the source's explicit time zone, or a fixed interval (the demo's fast
trigger). Times are timezone-aware datetimes; the caller passes ``now``.

Rules, each tested with a table in ``tests/daemon/test_schedule.py``:

- the next run of a job is its next cron slot after the last run's start, plus a
  deterministic jitter in ``[0, jitter)`` derived from the job and the slot;
- a slot missed while the daemon was down runs once, now - not once per missed slot;
- a full sweep that never ran runs now (it is the baseline); an incremental or
  delete-log poll that never ran waits for its first slot;
- at most one poll per *lane* at a time; a source has one lane, or two with a fast
  lane (``poll_every``): its fast incremental and delete reads run in their own lane,
  beside the full sweep (:mod:`watcher.daemon.fastlane` has the fast lane's maths);
  when several modes of a lane are due, incremental goes first, then the delete log,
  then the full sweep - except that a job already due when its lane's last poll
  started goes before any other (the longest waiting first): a poll that takes longer
  than its interval is due again the moment it ends, and would otherwise keep the
  lane's other modes waiting for ever (a full sweep that never runs misses every
  change a tenant makes without moving its modified date).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from watcher.config import SourceConfig, WatcherConfig
from watcher.core.modes import Mode
from watcher.daemon.fastlane import DELETE_EVERY
from watcher.errors import ConfigError

__all__ = ["MODES", "MODE_PRIORITY", "Mode"]  # Mode re-exported: the runner imports it here
MODES: tuple[Mode, ...] = ("incremental", "delete_log", "full")
#: Lower runs first: fast change detection never waits behind a long sweep.
MODE_PRIORITY: Mapping[str, int] = {"incremental": 0, "delete_log": 1, "full": 2}


@dataclass(frozen=True)
class Job:
    """One poll mode of one source and when it fires."""

    source: str
    mode: Mode
    cron: str | None = None
    timezone: str = "UTC"
    every_s: float | None = None
    jitter_s: float = 0.0
    #: A fast-lane job (``poll_every``): runs beside the source's full sweep.
    fast: bool = False
    #: The longest a fast-lane job's interval stretches to (readiness allows for it).
    every_max_s: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.mode)

    @property
    def lane(self) -> str:
        """What one poll at a time is counted by: the source, or its fast lane."""
        return f"{self.source}/fast" if self.fast else self.source

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every_s is None):
            raise ValueError("a job needs exactly one of cron or every_s")
        if self.every_s is not None and self.every_s <= 0:
            raise ValueError("every_s must be positive")


def jobs_for_source(source: SourceConfig) -> list[Job]:
    """The jobs a source's config asks for, in priority order: its crons, and with
    ``poll_every`` the fast lane's incremental and delete-log jobs."""
    lane = source.fast_lane
    if lane is not None:
        every, top = lane
        deletes = [
            Job(
                source.name,
                "delete_log",
                every_s=every * DELETE_EVERY,
                fast=True,
                every_max_s=top * DELETE_EVERY,
            )
        ]
        return [
            Job(source.name, "incremental", every_s=every, fast=True, every_max_s=top),
            *(deletes if source.has_delete_feed else []),  # else full sweeps find deletes
            Job(
                source.name,
                "full",
                cron=source.full_sweep,
                timezone=source.timezone,
                jitter_s=source.jitter_seconds,
            ),
        ]
    crons: dict[Mode, str | None] = {
        "incremental": source.incremental,
        "delete_log": source.delete_log,
        "full": source.full_sweep,
    }
    return [
        Job(source.name, mode, cron=cron, timezone=source.timezone, jitter_s=source.jitter_seconds)
        for mode, cron in crons.items()
        if cron is not None
    ]


def jobs_for(config: WatcherConfig, *, every_s: float | None = None) -> list[Job]:
    """Every job of every source.

    ``every_s`` (the demo: cron has minute granularity) runs the incremental and
    delete-log polls of each source every ``every_s`` seconds instead of on their
    cron - or the full sweep, for a source with neither.
    """
    jobs: list[Job] = []
    for source in config.sources:
        own = jobs_for_source(source)
        if every_s is not None:
            fast = {j.mode for j in own} & {"incremental", "delete_log"} or {"full"}
            own = [
                Job(source.name, j.mode, every_s=every_s) if j.mode in fast and not j.fast else j
                for j in own
            ]
        jobs.extend(own)
    return jobs


def next_slot(job: Job, after: datetime) -> datetime:
    """The first slot strictly after ``after`` (cron evaluated in the job's zone)."""
    if job.every_s is not None:
        return after + timedelta(seconds=job.every_s)
    if job.cron is None:  # Job.__post_init__ refuses this; a copy made around it is caught
        raise ConfigError(f"source {job.source!r}: the {job.mode} job has no cron or interval")
    local = after.astimezone(ZoneInfo(job.timezone))
    nxt: datetime = croniter(job.cron, local).get_next(datetime)
    return nxt.astimezone(UTC)


def jitter(job: Job, slot: datetime) -> float:
    """Deterministic offset in ``[0, jitter_s)`` for this job and slot.

    Derived from a hash so the same slot always gets the same offset (a restart
    does not reshuffle) while sources sharing a cron spread out.
    """
    if job.jitter_s <= 0:
        return 0.0
    seed = f"{job.source}\0{job.mode}\0{slot.timestamp():.0f}".encode()
    fraction = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") / 2**64
    return fraction * job.jitter_s


def due_at(job: Job, last_start: datetime | None, now: datetime) -> datetime:
    """When ``job`` should next start, given when it last started (``None``: never).

    A slot missed while the daemon was down (or while a long poll ran) gives
    ``now`` exactly once; the run after that is computed from its own start.
    """
    if last_start is None:
        if job.mode == "full":
            return now
        slot = next_slot(job, now)
        return slot + timedelta(seconds=jitter(job, slot))
    slot = next_slot(job, last_start)
    if slot <= now:
        return now
    return slot + timedelta(seconds=jitter(job, slot))


def plan(
    due: Mapping[Job, datetime],
    now: datetime,
    running: Set[str] = frozenset(),
    lane_started: Mapping[str, datetime] | None = None,
) -> list[Job]:
    """The jobs to start now: due, lane idle, one per lane (:attr:`Job.lane`), by priority.

    ``lane_started``: when each lane's last poll started. A job due by then has waited
    through that poll, and goes first (the earliest due of those first), so no mode
    of a lane starves behind another that is always due again. Ties between sources
    keep the earliest-due first so no source starves.
    """
    started = lane_started or {}
    best: dict[str, Job] = {}
    for job, when in due.items():
        if when > now or job.lane in running:
            continue
        current = best.get(job.lane)
        last = started.get(job.lane)
        if current is None or _rank(job, when, last) < _rank(current, due[current], last):
            best[job.lane] = job
    return sorted(best.values(), key=lambda j: (MODE_PRIORITY[j.mode], due[j], j.source))


def next_wake(due: Mapping[Job, datetime], running: Set[str] = frozenset()) -> datetime | None:
    """The earliest time a job of an idle lane becomes due (``None``: nothing to wait for)."""
    times = [when for job, when in due.items() if job.lane not in running]
    return min(times) if times else None


def _rank(job: Job, when: datetime, lane_started: datetime | None) -> tuple[int, int, datetime]:
    if lane_started is not None and when <= lane_started:
        return (0, 0, when)  # waited through the lane's last poll: the longest waiting first
    return (1, MODE_PRIORITY[job.mode], when)


def reschedule(
    jobs: Iterable[Job],
    last_starts: Mapping[tuple[str, str], datetime],
    now: datetime,
) -> dict[Job, datetime]:
    """Due times for ``jobs`` from persisted last starts (start-up and reload)."""
    return {job: due_at(job, last_starts.get(job.key), now) for job in jobs}


def period_s(job: Job, now: datetime) -> float:
    """Seconds between the job's next two slots (a fast lane: its longest stretch)."""
    if job.every_max_s is not None:
        return job.every_max_s
    first = next_slot(job, now)
    return (next_slot(job, first) - first).total_seconds()


def stale_after_s(jobs: Iterable[Job], now: datetime, *, slack_s: float = 60.0) -> float | None:
    """How old a source's last successful poll may be before ``/readyz`` fails:
    two of its shortest periods plus the jitter and some slack (``None``: no jobs)."""
    limits = [2 * period_s(j, now) + j.jitter_s + slack_s for j in jobs]
    return min(limits) if limits else None
