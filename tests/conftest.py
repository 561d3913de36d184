"""Suite-wide fixtures: every test starts with default logging and no remembered secrets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from hypothesis import HealthCheck, settings

from watcher import logging as watcher_logging

# The suite shares 2 cores with whatever else runs; generation speed and per-example
# time are not what the properties test, so they must not fail a run.
settings.register_profile(
    "watcher",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("watcher")


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    watcher_logging._SECRETS.clear()
