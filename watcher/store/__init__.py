"""SQLite store (sqlite-utils, WAL): migrations, snapshots, polls, events, outbox."""

from watcher.store.db import migrate, open_database, transaction, translate_errors
from watcher.store.store import (
    PageCommit,
    Router,
    SourceState,
    Store,
    StoredEvent,
    delivery_id,
    route_nothing,
)

__all__ = [
    "PageCommit",
    "Router",
    "SourceState",
    "Store",
    "StoredEvent",
    "delivery_id",
    "migrate",
    "open_database",
    "route_nothing",
    "transaction",
    "translate_errors",
]
