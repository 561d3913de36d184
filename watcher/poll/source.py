"""What the poll engine needs from Gainsight, as a Protocol.

:class:`~watcher.gainsight.GainsightClient` satisfies it, and so does the in-memory
tenant the tests use (:class:`watcher.testing.memory.MemorySource`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from watcher.config import SourceConfig
from watcher.gainsight.budget import Priority
from watcher.gainsight.query import Condition, Direction


class PageLike(Protocol):
    @property
    def records(self) -> Sequence[dict[str, Any]]: ...

    @property
    def number(self) -> int: ...

    @property
    def calls(self) -> int: ...

    @property
    def digest(self) -> int | None:
        """A hash of the reply's rows as received (``None``: not known)."""
        ...


class DeletedLike(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def deleted_at(self) -> datetime | None: ...


class RecordSource(Protocol):
    """The reads a poll makes (the Gainsight client's signatures)."""

    def iter_pages(
        self,
        source: SourceConfig,
        *,
        conditions: Sequence[Condition] = (),
        order_by: Mapping[str, Direction] | None = None,
        priority: Priority = Priority.LOW,
    ) -> AsyncIterator[PageLike]: ...

    async def fetch_by_keys(
        self, source: SourceConfig, keys: Sequence[str], *, priority: Priority = Priority.HIGH
    ) -> list[dict[str, Any]]: ...

    async def deleted_since(
        self, source: SourceConfig, since: datetime, *, priority: Priority = Priority.HIGH
    ) -> list[Any]: ...
