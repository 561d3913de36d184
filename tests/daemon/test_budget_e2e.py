"""The shared API budget under a long sweep, measured at the simulated tenant.

A big source's baseline sweep needs minutes of budget at a low requests_per_minute;
a small source polls incrementally every minute meanwhile. Run on a time-scaled
clock shared by the tenant and the daemon (a simulated minute is 3 real seconds)
so minutes of schedule take seconds: the tenant never answers 429, no 60-second
window carries more than requests_per_minute calls, incremental polls run on their
minute while the sweep is still going, and no sweep request ever jumps ahead of a
waiting incremental one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from watcher.clock import ScaledClock
from watcher.config import load_config
from watcher.daemon.metrics import Metrics
from watcher.daemon.runner import Daemon
from watcher.daemon.wiring import real_builder
from watcher.store import Store
from watcher.store.view import StoreView
from watcher.testing.sim import running_sim

pytestmark = pytest.mark.slow

RPM = 6
SLACK = timedelta(seconds=1)
KEY = "budget-test-key"


class Recording(httpx.AsyncBaseTransport):
    """Notes the (scaled) time of every request to the tenant."""

    def __init__(self, clock: ScaledClock) -> None:
        self.clock = clock
        self.inner = httpx.AsyncHTTPTransport()
        self.times: list[datetime] = []
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(self.clock.now())
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def config_text(base_url: str) -> str:
    return f"""
[gainsight]
base_url = "{base_url}"
access_key_env = "BUDGET_TEST_KEY"
requests_per_minute = {RPM}
max_retries = 0

[store]
path = "watcher.db"

[rules]
paths = []

[[sources]]
name = "companies"
kind = "company"
select = ["Gsid", "Name", "ModifiedDate"]
page_size = 200
full_sweep = "0 */6 * * *"

[[sources]]
name = "ctas"
kind = "cta"
select = ["Gsid", "Name", "ModifiedDate"]
full_sweep = "0 */6 * * *"
incremental = "* * * * *"
"""


async def test_a_long_sweep_never_starves_incrementals_nor_breaks_the_rate_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """26 pages at 6/min take 4+ minutes; the minute incrementals still run on time."""
    start = datetime(2026, 11, 23, 16, 0, 30, tzinfo=UTC)
    clock = ScaledClock(20, start)
    monkeypatch.setenv("BUDGET_TEST_KEY", KEY)
    with running_sim(
        companies=5200, ctas=30, goals=0, access_key=KEY, clock=clock, requests_per_minute=RPM
    ) as sim:
        path = tmp_path / "watcher.toml"
        path.write_text(config_text(sim.base_url))
        recording = Recording(clock)
        view = StoreView(tmp_path / "watcher.db")
        metrics = Metrics(lambda: view.stats(clock.now()))
        daemon = Daemon(
            load_config(path),
            real_builder(
                clock=clock, base_dir=tmp_path, metrics=metrics, gainsight_transport=recording
            ),
            clock=clock,
            config_path=path,
            metrics=metrics,
        )
        await daemon.run(until=start + timedelta(minutes=6))
        served = sim.tenant.requests_served

    assert metrics.registry.get_sample_value("watcher_api_rate_limited_total") == 0.0
    assert served == len(recording.times)
    for t in recording.times:  # no 60 s window - sliding or fixed - over the limit
        assert sum(t <= u < t + timedelta(seconds=60) for u in recording.times) <= RPM

    store = Store.open(tmp_path / "watcher.db")
    try:
        polls = store.polls(limit=100)
    finally:
        store.close()
    sweep = next(p for p in polls if p["source"] == "companies")
    assert sweep["outcome"] == "ok"
    assert sweep["pages"] >= 26
    swept_until = datetime.fromisoformat(sweep["finished_at"].replace("Z", "+00:00"))
    assert swept_until - start > timedelta(minutes=4), "the sweep really was long"
    incrementals = [p for p in polls if p["source"] == "ctas" and p["mode"] == "incremental"]
    during = [
        datetime.fromisoformat(p["started_at"].replace("Z", "+00:00"))
        for p in incrementals
        if datetime.fromisoformat(p["started_at"].replace("Z", "+00:00")) < swept_until
    ]
    assert len(during) >= 3, "incrementals ran while the sweep was going"
    sent = list(zip(recording.times, recording.paths, strict=True))
    for p in incrementals:
        began = datetime.fromisoformat(p["started_at"].replace("Z", "+00:00"))
        ended = datetime.fromisoformat(p["finished_at"].replace("Z", "+00:00"))
        assert p["outcome"] == "ok"
        # HIGH first: once an incremental is waiting, no sweep request goes before it
        first_cta = next(
            t for t, path in sent if t >= began and path.endswith("/query/call_to_action")
        )
        # (a sweep request that took its slot just before the poll began may land 1 s in)
        late = [t for t, path in sent if began + SLACK <= t < first_cta and "Company" in path]
        assert not late, p
        # so it waits at most for one slot of the sliding minute window
        assert ended - began < timedelta(seconds=61 + 20), p
