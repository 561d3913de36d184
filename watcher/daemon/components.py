"""What the daemon drives, as small protocols: a :class:`Poller` and a
:class:`Dispatcher`, bundled per config version in :class:`Components` by a
:data:`Builder` (:mod:`watcher.daemon.wiring` builds the real ones)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from watcher.config import SourceConfig, WatcherConfig
from watcher.daemon.schedule import Mode


@dataclass(frozen=True)
class PollReport:
    """What one poll did; ``logged`` when the engine already wrote ``poll.finished``."""

    outcome: str = "ok"
    pages: int = 0
    records: int = 0
    calls: int = 0
    events: int = 0
    error: str | None = None
    logged: bool = False
    auth: bool = False  # Gainsight rejected the access key (401/403): back off the tenant

    @property
    def ok(self) -> bool:
        return self.outcome in ("ok", "success", "succeeded", "completed", "held")


class Poller(Protocol):
    async def poll(self, source: SourceConfig, mode: Mode) -> PollReport: ...


class Dispatcher(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass
class Components:
    """Everything one config version needs; ``aclose`` releases it."""

    poller: Poller
    dispatcher: Dispatcher | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    aclose: Callable[[], Awaitable[None]] | None = None
    wake_dispatcher: Callable[[], None] | None = None
    #: ``{sink: "ok" | why degraded}`` (stuck Python handlers); read by /readyz, /metrics.
    sink_health: Callable[[], Mapping[str, str]] | None = None
    #: The loaded rules' names, for the status page.
    rule_names: tuple[str, ...] = ()


Builder = Callable[[WatcherConfig], Awaitable[Components]]
