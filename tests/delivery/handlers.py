"""Python-sink targets used by the tests (imported by ``package.module:function``)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

received: list[dict[str, Any]] = []


def record(event: dict[str, Any]) -> None:
    received.append(event)


async def record_async(event: dict[str, Any]) -> None:
    await asyncio.sleep(0)
    received.append(event)


def explode(event: dict[str, Any]) -> None:
    raise ValueError(f"cannot handle {event['id']}")


async def hang(event: dict[str, Any]) -> None:
    await asyncio.Event().wait()


#: A test sets this to a fresh Event; ``gated`` holds every call until it is set.
gate: asyncio.Event | None = None


async def gated(event: dict[str, Any]) -> None:
    assert gate is not None, "set tests.delivery.handlers.gate first"
    await gate.wait()
    received.append(event)


#: ``block`` holds its thread until a test sets this (tests set it when done).
release = threading.Event()


def block(event: dict[str, Any]) -> None:
    """A sync handler that hangs (until ``release`` is set)."""
    release.wait()
    received.append(event)
