"""Schedule maths: cron in the source's zone, jitter, missed runs, priority (tables)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.config import parse_config
from watcher.daemon.schedule import (
    Job,
    due_at,
    jitter,
    jobs_for,
    next_slot,
    next_wake,
    plan,
    reschedule,
    stale_after_s,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


INC = Job("companies", "incremental", cron="*/2 * * * *")
FULL = Job("companies", "full", cron="0 */6 * * *")
DLOG = Job("companies", "delete_log", cron="*/10 * * * *")
BERLIN_9AM = Job("ctas", "full", cron="0 9 * * *", timezone="Europe/Berlin")
NY_2_30 = Job("goals", "full", cron="30 2 * * *", timezone="America/New_York")


@pytest.mark.parametrize(
    ("job", "after", "expected"),
    [
        (INC, "2026-11-23 16:00:00", "2026-11-23 16:02:00"),
        (INC, "2026-11-23 16:01:59", "2026-11-23 16:02:00"),
        (FULL, "2026-11-23 16:00:00", "2026-11-23 18:00:00"),
        # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
        (BERLIN_9AM, "2026-11-23 09:00:00", "2026-11-24 08:00:00"),
        (BERLIN_9AM, "2026-07-01 06:00:00", "2026-07-01 07:00:00"),
        # 02:30 does not exist in New York on 2026-03-08 (DST starts): it runs at 03:00 EDT.
        (NY_2_30, "2026-03-07 08:00:00", "2026-03-08 07:00:00"),
        (NY_2_30, "2026-03-08 08:00:00", "2026-03-09 06:30:00"),
        (Job("x", "incremental", every_s=5), "2026-11-23 16:00:00", "2026-11-23 16:00:05"),
    ],
)
def test_next_slot_follows_the_cron_in_the_sources_zone(
    job: Job, after: str, expected: str
) -> None:
    """The next slot is strictly after ``after``, computed in the job's time zone."""
    assert next_slot(job, utc(after)) == utc(expected)


@pytest.mark.parametrize(
    ("job", "last_start", "now", "expected"),
    [
        # never ran: the full sweep is the baseline and runs now; the others wait for a slot
        (FULL, None, "2026-11-23 16:00:30", "2026-11-23 16:00:30"),
        (INC, None, "2026-11-23 16:00:30", "2026-11-23 16:02:00"),
        # ran recently: the next slot after the last start
        (INC, "2026-11-23 16:00:00", "2026-11-23 16:00:45", "2026-11-23 16:02:00"),
        # down for three days (36 missed incremental slots, 12 sweeps): once, now
        (INC, "2026-11-20 16:00:00", "2026-11-23 16:00:45", "2026-11-23 16:00:45"),
        (FULL, "2026-11-20 12:00:00", "2026-11-23 16:00:45", "2026-11-23 16:00:45"),
        # a poll that outlived its period is due again at once, not once per slot
        (INC, "2026-11-23 16:00:00", "2026-11-23 16:07:00", "2026-11-23 16:07:00"),
        # exactly at the slot is due
        (INC, "2026-11-23 16:00:00", "2026-11-23 16:02:00", "2026-11-23 16:02:00"),
    ],
)
def test_due_at_runs_a_missed_slot_once_now(
    job: Job, last_start: str | None, now: str, expected: str
) -> None:
    """A slot missed while down runs once at start, not once per missed slot."""
    last = utc(last_start) if last_start else None
    assert due_at(job, last, utc(now)) == utc(expected)


def test_missed_slots_give_exactly_one_run_then_the_normal_cadence() -> None:
    """After the catch-up run, the next one is the next slot after it started."""
    now = utc("2026-11-23 16:00:45")
    first = due_at(INC, utc("2026-11-20 16:00:00"), now)
    assert first == now
    assert due_at(INC, first, first + timedelta(seconds=3)) == utc("2026-11-23 16:02:00")


@pytest.mark.parametrize("jitter_s", [1.0, 30.0, 90.0])
def test_jitter_is_deterministic_and_within_bounds(jitter_s: float) -> None:
    """Jitter is in [0, jitter) and the same for the same job and slot."""
    job = Job("companies", "incremental", cron="*/2 * * * *", jitter_s=jitter_s)
    slots = [utc("2026-11-23 16:00:00") + timedelta(minutes=2 * i) for i in range(50)]
    values = [jitter(job, s) for s in slots]
    assert all(0 <= v < jitter_s for v in values)
    assert values == [jitter(job, s) for s in slots]
    assert len(set(values)) > 40  # spread out, not a constant
    due = due_at(job, utc("2026-11-23 16:00:00"), utc("2026-11-23 16:01:00"))
    assert (
        utc("2026-11-23 16:02:00") <= due < utc("2026-11-23 16:02:00") + timedelta(seconds=jitter_s)
    )


def test_jitter_spreads_sources_sharing_a_cron() -> None:
    """Two sources on the same cron get different offsets for the same slot."""
    slot = utc("2026-11-23 16:00:00")
    a = Job("a", "incremental", cron="*/2 * * * *", jitter_s=60)
    b = Job("b", "incremental", cron="*/2 * * * *", jitter_s=60)
    assert jitter(a, slot) != jitter(b, slot)
    assert jitter(Job("a", "incremental", cron="* * * * *"), slot) == 0.0


@given(
    minutes=st.integers(min_value=0, max_value=60 * 24 * 30),
    down=st.integers(min_value=0, max_value=60 * 24 * 30),
)
def test_due_is_never_in_the_past_and_never_after_the_next_slot(minutes: int, down: int) -> None:
    """Property: due time is >= now and <= the first slot after now (+ jitter 0)."""
    last = utc("2026-01-01 00:00:00") + timedelta(minutes=minutes, seconds=17)
    now = last + timedelta(minutes=down, seconds=5)
    due = due_at(INC, last, now)
    assert now <= due <= next_slot(INC, now)


NOW = utc("2026-11-23 16:00:00")
EARLIER = NOW - timedelta(minutes=5)
LATER = NOW + timedelta(minutes=5)
CTA_INC = Job("ctas", "incremental", cron="* * * * *")
CTA_FULL = Job("ctas", "full", cron="0 * * * *")


@pytest.mark.parametrize(
    ("due", "running", "expected"),
    [
        # nothing due
        ({INC: LATER, FULL: LATER}, set(), []),
        # incremental before the delete log before the full sweep of the same source
        ({FULL: EARLIER, INC: NOW, DLOG: NOW}, set(), [INC]),
        ({FULL: EARLIER, DLOG: NOW}, set(), [DLOG]),
        ({FULL: NOW}, set(), [FULL]),
        # one poll per source: a running source starts nothing
        ({INC: NOW, FULL: NOW}, {"companies"}, []),
        # other sources are independent; incrementals first across sources
        ({FULL: NOW, CTA_INC: NOW}, set(), [CTA_INC, FULL]),
        ({FULL: NOW, CTA_FULL: EARLIER}, {"companies"}, [CTA_FULL]),
        ({CTA_FULL: EARLIER, FULL: NOW}, set(), [CTA_FULL, FULL]),
    ],
)
def test_plan_picks_one_job_per_idle_source_by_priority(
    due: dict[Job, datetime], running: set[str], expected: list[Job]
) -> None:
    """Due jobs of idle sources, one per source, incremental first."""
    assert plan(due, NOW, running) == expected


def test_a_mode_due_before_its_lanes_last_poll_started_goes_first() -> None:
    """An incremental poll longer than its interval is due again as it ends; the full
    sweep (and the delete log) that waited through it run next, longest waiting first,
    so no mode of a lane waits for ever."""
    lane_started = {"companies": EARLIER + timedelta(minutes=1)}
    # waited through the last poll: before the incremental due again now
    assert plan({FULL: EARLIER, INC: NOW}, NOW, set(), lane_started) == [FULL]
    # both waited: the longest waiting first, whatever the mode
    waited = {FULL: EARLIER, DLOG: EARLIER + timedelta(seconds=30), INC: NOW}
    assert plan(waited, NOW, set(), lane_started) == [FULL]
    # due only since the last poll started: incremental first, as usual
    assert plan({FULL: NOW - timedelta(seconds=1), INC: NOW}, NOW, set(), lane_started) == [INC]
    # another lane's start says nothing of this one
    assert plan({FULL: EARLIER, INC: NOW}, NOW, set(), {"ctas": NOW}) == [INC]


def test_an_always_due_incremental_lets_the_other_modes_of_its_lane_run() -> None:
    """Simulated: incremental and delete log every 30 s, each poll taking 45 s, a full
    sweep due once. Under the plan the runner follows, the full sweep runs within
    three polls of falling due and the other two modes keep alternating."""
    inc = Job("companies", "incremental", every_s=30)
    dlog = Job("companies", "delete_log", every_s=30)
    due = {inc: NOW, dlog: NOW, FULL: NOW + timedelta(seconds=10)}
    lane_started: dict[str, datetime] = {}
    now, ran = NOW, []
    for _ in range(12):
        [job] = plan(due, now, set(), lane_started)
        ran.append(job.mode)
        del due[job]
        lane_started[job.lane] = now
        start, now = now, now + timedelta(seconds=45)
        if job is not FULL:
            due[job] = due_at(job, start, now)
    assert "full" in ran[:3]
    assert ran.count("incremental") >= 5
    assert ran.count("delete_log") >= 5


def test_next_wake_ignores_busy_sources() -> None:
    """The scheduler sleeps until the earliest job of an idle source."""
    due = {INC: NOW, CTA_FULL: LATER}
    assert next_wake(due, {"companies"}) == LATER
    assert next_wake(due, {"companies", "ctas"}) is None
    assert next_wake(due) == NOW


CONFIG = parse_config(
    {
        "gainsight": {"base_url": "https://acme.gainsightcloud.com", "access_key_env": "K"},
        "sources": [
            {
                "name": "companies",
                "kind": "company",
                "full_sweep": "0 */6 * * *",
                "incremental": "*/2 * * * *",
                "delete_log": "*/10 * * * *",
                "timezone": "Europe/Berlin",
                "jitter": "30s",
            },
            {"name": "ctas", "kind": "cta", "full_sweep": "0 * * * *"},
        ],
    }
)


def test_jobs_for_reads_every_cron_zone_and_jitter_from_config() -> None:
    """Each configured cron is a job carrying the source's zone and jitter."""
    jobs = jobs_for(CONFIG)
    assert [(j.source, j.mode, j.cron) for j in jobs] == [
        ("companies", "incremental", "*/2 * * * *"),
        ("companies", "delete_log", "*/10 * * * *"),
        ("companies", "full", "0 */6 * * *"),
        ("ctas", "full", "0 * * * *"),
    ]
    assert {j.timezone for j in jobs[:3]} == {"Europe/Berlin"}
    assert {j.jitter_s for j in jobs[:3]} == {30.0}


def test_jobs_for_with_a_fast_interval_replaces_the_incremental_or_full_cron() -> None:
    """The demo's fixed interval drives incremental and delete-log polls (or full
    sweeps for a source with neither); the other crons stay."""
    jobs = jobs_for(CONFIG, every_s=5)
    fast = [(j.source, j.mode) for j in jobs if j.every_s == 5]
    assert fast == [("companies", "incremental"), ("companies", "delete_log"), ("ctas", "full")]
    assert [(j.source, j.mode, j.cron) for j in jobs if j.every_s is None] == [
        ("companies", "full", "0 */6 * * *")
    ]


def test_reschedule_uses_persisted_starts() -> None:
    """Start-up due times come from the last starts saved in the store."""
    jobs = jobs_for(CONFIG)
    now = utc("2026-11-23 16:01:00")
    due = reschedule(jobs, {("companies", "full"): utc("2026-11-23 12:00:00")}, now)
    by_key = {j.key: d for j, d in due.items()}
    assert by_key[("companies", "full")] >= utc("2026-11-23 17:00:00")  # 18:00 Berlin
    assert by_key[("ctas", "full")] == now  # never ran: baseline now


def test_stale_after_is_two_periods_plus_slack() -> None:
    """Readiness tolerates two missed periods of the source's fastest job."""
    assert stale_after_s([INC, FULL], NOW) == 2 * 120 + 60
    assert stale_after_s([], NOW) is None


def test_a_job_needs_exactly_one_trigger() -> None:
    """A job has a cron or an interval, not both, not neither."""
    with pytest.raises(ValueError, match="exactly one"):
        Job("a", "full")
    with pytest.raises(ValueError, match="exactly one"):
        Job("a", "full", cron="* * * * *", every_s=1)
    with pytest.raises(ValueError, match="positive"):
        Job("a", "full", every_s=0)


def test_zone_is_respected_across_dst_change() -> None:
    """A daily 09:00 Berlin job moves by an hour in UTC across the DST change."""
    before = next_slot(BERLIN_9AM, datetime(2026, 3, 28, 6, tzinfo=ZoneInfo("UTC")))
    after = next_slot(BERLIN_9AM, before)
    assert (after - before) == timedelta(hours=23)
