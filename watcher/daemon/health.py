"""Readiness (``/readyz``) as a pure function of what the daemon knows (no I/O).

Ready means: the store is open (and is still the file the daemon opened), and every
configured source's last poll succeeded recently - within two of its shortest
schedule periods plus jitter and a minute of slack - and no sink is degraded (a
Python sink whose handlers overran their timeout and still hold their threads).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from watcher.daemon.schedule import Job, stale_after_s

STORE_MISSING = "not open (the database file is missing or unreadable)"
STORE_REPLACED = "the database file was replaced under the daemon; restart it"


@dataclass
class Readiness:
    """The answer of ``/readyz``: ready, and why not."""

    ready: bool
    checks: dict[str, str] = field(default_factory=dict)


def store_check(opened_inode: int | None, inode: int | None, answers: bool) -> str:
    """``"ok"`` or what is wrong with the store file."""
    if inode is None or not answers:
        return STORE_MISSING
    if opened_inode is not None and inode != opened_inode:
        return STORE_REPLACED
    return "ok"


def assess(
    *,
    store: str,
    sources: Iterable[str],
    jobs: Sequence[Job],
    last: Mapping[str, tuple[datetime, bool]],
    now: datetime,
    sinks: Mapping[str, str] | None = None,
) -> Readiness:
    """Readiness from the store check, each source's last poll (finish time, ok) and
    the sinks that can degrade (``"ok"`` or why not, shown as ``sink:NAME``)."""
    checks = {"store": store}
    for name in sources:
        limit = stale_after_s([j for j in jobs if j.source == name], now)
        result = last.get(name)
        if result is None:
            checks[name] = "no poll yet"
        elif not result[1]:
            checks[name] = "last poll failed"
        elif limit is not None and (now - result[0]).total_seconds() > limit:
            checks[name] = f"last successful poll older than {limit:.0f}s"
        else:
            checks[name] = "ok"
    for name, health in sorted((sinks or {}).items()):
        checks[f"sink:{name}"] = health
    return Readiness(all(v == "ok" for v in checks.values()), checks)
