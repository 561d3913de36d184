"""Suite-wide fixtures: every test starts with default logging and no remembered secrets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from watcher import logging as watcher_logging


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    watcher_logging._SECRETS.clear()
