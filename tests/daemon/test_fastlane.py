"""The fast lane's schedule maths, table-tested (pure)."""

from __future__ import annotations

import pytest

from watcher.daemon.fastlane import DELETE_EVERY, Lane, calls_per_minute


@pytest.mark.parametrize(
    ("rounds", "intervals"),
    [
        ("", [10.0]),
        ("n", [10.0, 15.0]),
        ("nn", [10.0, 15.0, 22.5]),
        ("nnnn", [10.0, 15.0, 22.5, 33.75, 40.0]),  # capped at poll_every_max
        ("nnnnnn", [10.0, 15.0, 22.5, 33.75, 40.0, 40.0, 40.0]),
        ("nnnc", [10.0, 15.0, 22.5, 33.75, 10.0]),  # the first change snaps back
        ("ccnc", [10.0, 10.0, 10.0, 15.0, 10.0]),
    ],
)
def test_lane_stretches_while_idle_and_snaps_back_on_change(
    rounds: str, intervals: list[float]
) -> None:
    lane = Lane.start(10.0, 40.0)
    seen = [lane.interval_s]
    for r in rounds:
        lane = lane.after_round(changed=r == "c")
        seen.append(lane.interval_s)
    assert seen == intervals


def test_delete_reads_run_every_nth_round() -> None:
    lane = Lane.start(10.0, 40.0)
    assert lane.wait_s("incremental") == 10.0
    assert lane.wait_s("delete_log") == 10.0 * DELETE_EVERY
    assert Lane.start(10.0, 5.0).max_s == 10.0  # never shorter than poll_every


def test_two_fast_sources_at_10s_stay_within_25_calls_a_minute() -> None:
    assert calls_per_minute(10.0, sources=2) <= 25


def test_fast_lane_jobs_replace_the_crons_and_skip_deletes_without_a_feed() -> None:
    from watcher.config import SourceConfig
    from watcher.daemon.schedule import jobs_for_source

    source = SourceConfig(name="c", kind="company", poll_every="10s")
    jobs = {(j.mode, j.fast, j.every_s) for j in jobs_for_source(source)}
    assert jobs == {("incremental", True, 10.0), ("delete_log", True, 20.0), ("full", False, None)}
    odd = SourceConfig(name="o", kind="object", object="X", path="/v1/custom", poll_every="10s")
    assert [j.mode for j in jobs_for_source(odd)] == ["incremental", "full"]
