"""The crash soak, short form (``make soak`` runs the full one with 20 kills).

Real processes on loopback: ``watcher sim`` with a continuous stream of changes,
the daemon (killed with SIGKILL three times at random moments and restarted), and
a webhook receiver; then the tenant's ground truth, the store's events and the
receiver's log must agree (see tests/reliability/verify.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.reliability.soak import SoakOptions, run_soak


@pytest.mark.soak
@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_three_sigkills_lose_no_change_and_no_delivery(tmp_path: Path) -> None:
    """SIGKILL x3 under a stream of changes: every net change has an event, every
    event a delivery, repeats carry the same id and body, the database stays intact."""
    options = SoakOptions(
        kills=3,
        seed=4,
        companies=200,
        ctas=60,
        max_gap_s=1.5,
        catch_up_s=45.0,
        workdir=tmp_path,
        python=sys.executable,
    )
    report = await run_soak(options)
    assert report.ok, report.summary()
    assert report.kills == 3
    assert report.restarts == 3
    assert report.integrity_checks == 4
    assert report.tenant_changes > 0
    assert report.verdict.events > 0
    assert report.verdict.unique_delivered == report.verdict.events
