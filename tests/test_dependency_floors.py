"""Dependency floors (issue 12): h11 with the request-smuggling fix, current uvicorn
and starlette; what is installed meets them."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def floors() -> dict[str, tuple[int, ...]]:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    out = {}
    for dep in deps:
        match = re.match(r"([A-Za-z0-9_-]+)>=([0-9.]+)", dep)
        if match:
            out[match.group(1).lower()] = tuple(int(p) for p in match.group(2).split("."))
    return out


@pytest.mark.parametrize(
    ("name", "minimum"), [("h11", (0, 16)), ("uvicorn", (0, 54)), ("starlette", (1, 10))]
)
def test_floors_are_at_least_the_fixed_releases_and_installed_versions_meet_them(
    name: str, minimum: tuple[int, ...]
) -> None:
    floor = floors()[name]
    assert floor >= minimum
    installed = tuple(int(p) for p in re.findall(r"\d+", version(name))[: len(floor)])
    assert installed >= floor
