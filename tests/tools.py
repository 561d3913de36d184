"""Real programs the tests need (nats-server, chromium, systemd-analyze, the installed
console script). A missing one fails its tests with how to install it: they never
skip, on a developer's machine or in CI (whose .ci/run installs them)."""

from __future__ import annotations

import shutil

import pytest


def require_program(*candidates: str, install: str) -> str:
    """The first of ``candidates`` (names on PATH or paths) that can be run."""
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    pytest.fail(f"{candidates[0]} is not installed; {install} (.ci/run installs it)")
