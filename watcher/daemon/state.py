"""The daemon's view of the store, re-exported: the SQL lives in :mod:`watcher.store`
(``daemon_schedule`` in :mod:`watcher.store.schedule`, the feed and outbox figures in
:mod:`watcher.store.view`)."""

from __future__ import annotations

from watcher.store.schedule import ScheduleState
from watcher.store.view import FeedPage, StoreView

__all__ = ["FeedPage", "ScheduleState", "StoreView"]
