"""SQLite store (sqlite-utils, WAL): migrations, snapshots, polls, events, outbox."""

from watcher.store.db import migrate, open_database, transaction, translate_errors
from watcher.store.deliveries import Route, delivery_id, queue_deliveries
from watcher.store.store import (
    PageCommit,
    SourceState,
    Store,
    StoredEvent,
)

__all__ = [
    "PageCommit",
    "Route",
    "SourceState",
    "Store",
    "StoredEvent",
    "delivery_id",
    "migrate",
    "open_database",
    "queue_deliveries",
    "transaction",
    "translate_errors",
]
