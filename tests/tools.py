"""Real programs the tests need: found on this machine, or skipped on a developer's
machine that lacks them; under CI (whose .ci/run installs them) a missing one fails."""

from __future__ import annotations

import os
import shutil

import pytest


def require_program(*candidates: str, install: str) -> str:
    """The first of ``candidates`` (names on PATH or paths) that can be run."""
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    message = f"{candidates[0]} is not installed ({install})"
    if os.environ.get("CI"):
        pytest.fail(message + "; .ci/run installs it, so CI must have it")
    pytest.skip(message)
