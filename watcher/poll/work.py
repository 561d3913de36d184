"""What one poll works with: its result, its working state, the engine's constants."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from watcher.config import SourceConfig
from watcher.core.events import CloudEvent
from watcher.gainsight.query import CTA_LIST_PATH
from watcher.gainsight.routes import paging_of, path_of
from watcher.logging import get_logger
from watcher.poll.intake import Oddities
from watcher.store.sweep_pages import SweepPage

Trigger = Literal["manual", "scheduled"]
Hook = Callable[[str], None]

# A hold below this many deletes would make tiny sources (a handful of CTAs)
# unusable: one delete of four records is 25%.
MIN_HELD_DELETES = 10
DAY = timedelta(days=1)
GC_EVERY_PAGES = 8
CONFIRM_EMPTY_READS = 2  # consecutive by-key reads that must all lack a key to delete it
MAX_CONFIRM_READS = 8
DELETE_LOG_RETENTION = timedelta(days=15)
# A modified date later than now plus this is not believed: it never moves the
# watermark (one record dated 2031 would otherwise freeze incremental reads).
MAX_CLOCK_SKEW = timedelta(minutes=5)

log = get_logger("watcher.poll")


def no_hook(_point: str) -> None:
    return None


def cockpit_list(source: SourceConfig) -> bool:
    """The Cockpit CTA list: page numbers, documented operators only (no key ranges)."""
    return paging_of(source) == "page" and path_of(source) == CTA_LIST_PATH


def freeze_startup_heap() -> None:
    """Move what start-up built (modules, config, rules) out of the collector's reach.

    Called once, before the first poll: every later collection (one each
    :data:`GC_EVERY_PAGES` pages, and the automatic ones a 5000-record page sets off)
    then walks only what polls made, not the whole program (a steady sweep of 200,000
    records spent 0.16 s in collections, most of it on start-up objects). No
    collection first: start-up leaves no garbage worth one (a full collection there
    found nothing and cost 17-35 ms of every `watcher poll`).
    """
    gc.freeze()


def collect_garbage(pages: int) -> None:
    """Free the HTTP replies of past pages now: they sit in reference cycles, and
    left to the generational collector they pile up (RSS grows with the tenant)."""
    if pages % GC_EVERY_PAGES == 0:
        gc.collect()


@dataclass
class PollResult:
    """What one poll did; ``events`` are the committed CloudEvents."""

    poll_id: str
    source: str
    mode: str
    trigger: str
    dry_run: bool = False
    outcome: str = "running"
    baseline: bool = False
    pages: int = 0
    records: int = 0
    api_calls: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    touched: int = 0
    missing: int = 0
    reappeared: int = 0
    held: int = 0
    held_reason: str | None = None
    skipped: int = 0  # records without a usable key, or that could not be compared
    duplicates: int = 0  # extra copies of a key already read in this poll (dropped)
    future: int = 0  # records whose modified date is later than now (watermark kept)
    reselected: int = 0  # snapshots retaken because `select` changed (those fields silent)
    stale: int = 0  # records read older (modified field) than the stored one: skipped
    settled: int = 0  # full-sweep pages unchanged since the last sweep: not compared
    fields_added: list[str] = field(default_factory=list)
    fields_removed: list[str] = field(default_factory=list)
    error: str | None = None
    started: float = 0.0
    elapsed_s: float = 0.0
    # Not in the repr: asyncio.run formats its main task, result and all, on the way
    # out (a thousand events took 20 ms).
    events: list[CloudEvent] = field(default_factory=list, repr=False)

    def counts(self) -> dict[str, int]:
        return {
            "pages": self.pages,
            "records": self.records,
            "api_calls": self.api_calls,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
        }


@dataclass
class Sweep:
    """Per-poll working state."""

    source: SourceConfig
    result: PollResult
    emit_created: bool
    keep_events: int  # how many committed events the result keeps (memory stays bounded)
    max_modified: str | None = None
    fields: frozenset[str] = frozenset()  # the effective select of this poll
    field_set: int | None = None  # its id in the store (None in a dry run of a new select)
    stored_sets: dict[int, frozenset[str]] = field(default_factory=dict)
    ignores: dict[int, tuple[frozenset[str], bool]] = field(default_factory=dict)
    seen_pages: int = 0
    #: A full sweep in key order: what its pages saw are key windows, one after the
    #: other (no seen-set); ``covered`` is the last key of the last page. Off when a
    #: page breaks the order (the seen-set takes over) and in dry runs.
    by_range: bool = False
    covered: str | None = None
    #: The window the page just compared was read in, for the next sweep's hint.
    window_page: SweepPage | None = None
    #: Of the page being read: the row the last sweep left for its window, ``PRAGMA
    #: data_version`` before it was read (watcher.store.sweep_pages), the reply's digest.
    hint: SweepPage | None = None
    read_version: int | None = None
    reply_digest: int | None = None
    windows: list[str] = field(default_factory=list)  # where each window started
    paging: bool = False  # reading pages (not yet the reads by key that confirm deletes)
    #: A full sweep: keys the source's fast lane wrote or deleted while it ran (the
    #: sweep guard: never deleted by the sweep, a deleted one never re-created).
    lane_written: set[str] = field(default_factory=set)
    lane_deleted: set[str] = field(default_factory=set)
    odd: Oddities = field(init=False)

    def __post_init__(self) -> None:
        self.odd = Oddities(self.result, self.source.name, self.result.poll_id, self.source.key)
