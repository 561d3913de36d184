"""The crash soak's parts: options, report, the daemon's config, the store dump, a slow
receiver and the final comparison (:mod:`tests.reliability.soak` runs them)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.verify import Verdict
from watcher.config import SourceConfig
from watcher.store.view import dump
from watcher.testing.receivers import Reply, WebhookReceiver

IGNORED = ("ModifiedDate",)
OBJECTS = {"companies": "Company", "ctas": "call_to_action"}


@dataclass(frozen=True)
class SoakOptions:
    kills: int = 20
    seed: int = 1
    companies: int = 1500
    ctas: int = 300
    mutations_per_s: float = 8.0
    every_s: float = 0.5
    latency_s: float = 0.1  # added by the tenant to every data reply (polls take time)
    between_pages: int = 1  # tenant mutations between the page requests of one read
    receiver_delay_s: float = 0.05  # the receiver answers after this long
    min_gap_s: float = 0.3  # between a start and its SIGKILL
    max_gap_s: float = 3.0
    catch_up_s: float = 90.0
    workdir: Path | None = None
    python: str = sys.executable


@dataclass
class SoakReport:
    options: SoakOptions
    verdict: Verdict = field(default_factory=Verdict)
    kills: int = 0
    restarts: int = 0
    mutations: int = 0
    tenant_changes: int = 0
    integrity_checks: int = 0
    catch_up_s: float = 0.0
    torn: int = 0  # requests cut short by a kill (rejected by the receiver, resent later)
    wall_s: float = 0.0
    kill_phases: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.verdict.violations

    def summary(self) -> str:
        v, o = self.verdict, self.options
        types = ", ".join(f"{k.split('.', 1)[-1]} {n}" for k, n in sorted(v.by_type.items()))
        lines = [
            f"soak seed={o.seed}: {'PASS' if self.ok else 'FAIL'} in {self.wall_s:.1f}s",
            f"  tenant      {o.companies} companies, {o.ctas} CTAs; {self.mutations} mutation "
            f"requests -> {self.tenant_changes} ground-truth changes; "
            f"{v.changed_keys} keys with a net change",
            f"  daemon      {self.kills} SIGKILLs ({phase_summary(self.kill_phases)}), "
            f"{self.restarts} restarts, polls every {o.every_s:g}s; "
            f"integrity_check ok {self.integrity_checks}x",
            f"  events      {v.events} change events ({types})",
            f"  deliveries  {v.deliveries} received, {v.unique_delivered} unique ids, "
            f"{v.duplicates} repeats (same id, same body), {self.torn} torn by a kill; "
            f"caught up {self.catch_up_s:.1f}s after the changes stopped",
            f"  violations  {len(v.violations)}",
        ]
        lines.extend(f"    - {m}" for m in v.violations)
        return "\n".join(lines)


def phase_summary(phases: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(phases.items())) or "none"


# -- files -------------------------------------------------------------------------


def write_config(folder: Path, base_url: str, hook_url: str) -> Path:
    """A config for the soak: two sources (companies, CTAs), one rule, one webhook."""
    rules = folder / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "all.toml").write_text(
        "[[rules]]\n"
        'name = "every-change"\n'
        'sources = ["companies", "ctas"]\n'
        'on = ["created", "updated", "deleted"]\n'
        'sinks = ["hook"]\n'
    )
    path = folder / "watcher.toml"
    path.write_text(
        f"""[gainsight]
base_url = "{base_url}"
access_key_env = "SOAK_GAINSIGHT_KEY"
requests_per_minute = 100000
requests_per_day = 100000000
timeout_s = 10

[store]
path = "watcher.db"

[rules]
paths = ["rules"]

[[sources]]
name = "companies"
kind = "company"
select = ["Gsid", "Name", "Arr", "Stage", "Status", "Csm", "RenewalDate", "ModifiedDate"]
ignore_fields = ["ModifiedDate"]
full_sweep = "* * * * *"
incremental = "* * * * *"
incremental_overlap = "1m"
delete_log = "* * * * *"
timezone = "UTC"
max_delete_fraction = 1.0
page_size = 50

[[sources]]
name = "ctas"
kind = "cta"
select = ["Gsid", "Name", "CompanyId", "StatusId", "PriorityId", "DueDate", "IsClosed",
          "ModifiedDate"]
ignore_fields = ["ModifiedDate"]
full_sweep = "* * * * *"
incremental = "* * * * *"
delete_log = "* * * * *"
timezone = "UTC"
max_delete_fraction = 1.0
page_size = 50

[sinks.hook]
type = "webhook"
url_env = "SOAK_HOOK_URL"
secret_env = "SOAK_HOOK_SECRET"
retry_schedule = ["0s", "1s", "1s", "2s", "5s", "10s", "30s", "60s"]
"""
    )
    return path


# -- reading the store (read-only, while the daemon may write) -------------------


def read_store(db: Path) -> dict[str, Any]:
    """Snapshots per source, events (CloudEvents, in order), outbox rows, source state."""
    data = dump(db)
    return {
        "snapshots": data.snapshots,
        "events": data.events,
        "outbox": data.outbox,
        "baseline": data.baseline,
    }


# -- the soak ----------------------------------------------------------------------


class SlowReceiver(WebhookReceiver):
    """The webhook receiver, acknowledging each request ``delay`` seconds after it was
    recorded: kills then land while deliveries are in flight, including after the
    receiver has the event but before the daemon knows (the at-least-once repeat)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        async def slow_send(message: Any) -> None:
            if message.get("type") == "http.response.start" and self.delay > 0:
                await asyncio.sleep(self.delay)
            await send(message)

        await super()._app(scope, receive, slow_send)

    def reply(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        # A sender killed mid-request leaves a torn body: a real server rejects it.
        if headers.get("content-length") not in (None, str(len(body))):
            return Reply(400)
        return super().reply(method, path, headers, body)


def same_as_truth(
    snapshots: Mapping[str, Mapping[str, Any]],
    final: Mapping[str, Mapping[str, Any]],
    sources: Sequence[SourceConfig],
) -> bool:
    from tests.reliability.verify import visible

    for source in sources:
        stored = snapshots.get(source.name, {})
        want = final[source.name]
        if stored.keys() != want.keys():
            return False
        if any(visible(stored[k], want[k], source.ignore_fields) for k in want):
            return False
    return True
