"""Readiness as a pure function (table): store state and each source's last poll."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.daemon.health import STORE_MISSING, STORE_REPLACED, assess, store_check
from watcher.daemon.schedule import Job

NOW = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
JOBS = [
    Job("companies", "incremental", cron="*/2 * * * *"),  # stale after 2*120+60 = 300 s
    Job("companies", "full", cron="0 */6 * * *"),
    Job("ctas", "full", cron="0 * * * *", jitter_s=30),  # stale after 2*3600+30+60 s
]


def ago(seconds: float, ok: bool = True) -> tuple[datetime, bool]:
    return (NOW - timedelta(seconds=seconds), ok)


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        ({"companies": ago(10), "ctas": ago(100)}, {"companies": "ok", "ctas": "ok"}),
        ({"companies": ago(299), "ctas": ago(7289)}, {"companies": "ok", "ctas": "ok"}),
        (
            {"companies": ago(301), "ctas": ago(7291)},
            {
                "companies": "last successful poll older than 300s",
                "ctas": "last successful poll older than 7290s",
            },
        ),
        (
            {"companies": ago(10, ok=False)},
            {"companies": "last poll failed", "ctas": "no poll yet"},
        ),
    ],
)
def test_each_source_needs_a_recent_successful_poll(
    last: dict[str, tuple[datetime, bool]], expected: dict[str, str]
) -> None:
    """Recent means within two of the source's shortest periods plus jitter and slack."""
    state = assess(store="ok", sources=["companies", "ctas"], jobs=JOBS, last=last, now=NOW)
    assert state.checks == {"store": "ok", **expected}
    assert state.ready == all(v == "ok" for v in expected.values())


@pytest.mark.parametrize(
    ("opened", "now_inode", "answers", "expected"),
    [
        (7, 7, True, "ok"),
        (None, 7, True, "ok"),
        (7, None, False, STORE_MISSING),
        (7, 7, False, STORE_MISSING),
        (7, 8, True, STORE_REPLACED),
    ],
)
def test_store_check(
    opened: int | None, now_inode: int | None, answers: bool, expected: str
) -> None:
    """The store must answer and still be the file the daemon opened."""
    assert store_check(opened, now_inode, answers) == expected


def test_a_bad_store_alone_makes_the_daemon_unready() -> None:
    """Fresh polls do not make up for a missing database."""
    state = assess(
        store=STORE_MISSING, sources=["companies"], jobs=JOBS, last={"companies": ago(1)}, now=NOW
    )
    assert not state.ready
