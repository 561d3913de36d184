"""Which route a source reads, how it pages and how many records it asks for (pure).

Gainsight knowledge, not settings: the config models hold what the admin wrote
(``api``, ``path``, ``paging``, ``page_size``); these functions turn it into the
request shape. :func:`page_size_of` is the one place a source's page size is
decided: the client asks for it and the poll engine counts calls with it.

* MDA query (``POST /v1/data/objects/query/{Object}``): offset paging, ``limit`` <= 5000.
* Cockpit CTA list (``POST /v2/cockpit/cta/list``, ``api = "cockpit"``): page paging,
  ``pageSize`` <= 1000.
"""

from __future__ import annotations

from typing import Literal

from watcher.config import SourceConfig

Paging = Literal["page", "offset"]

MDA_MAX_LIMIT = 5000
COCKPIT_MAX_PAGE_SIZE = 1000
MDA_QUERY_PREFIX = "/v1/data/objects/query/"
CTA_LIST_PATH = "/v2/cockpit/cta/list"
CTA_DELETED_PATH = "/v2/cockpit/cta/deleted/list"
DELETE_LOG_PATH = MDA_QUERY_PREFIX + "record_delete_log"
COCKPIT_KEY_BATCH = 25  # keys per look-up on the Cockpit list: EQ terms joined with OR


def _cockpit(source: SourceConfig) -> bool:
    """A CTA source that asks for the Cockpit list; everything else reads the MDA route."""
    return source.kind == "cta" and source.api == "cockpit"


def path_of(source: SourceConfig) -> str:
    """The route the source's records are read from (its ``path`` override, else the
    documented route for its kind and ``api``)."""
    if source.path:
        return source.path
    if _cockpit(source):
        return CTA_LIST_PATH
    return MDA_QUERY_PREFIX + source.object_name


def paging_of(source: SourceConfig) -> Paging:
    """``page`` (1-based page numbers) or ``offset`` (limit/offset)."""
    if source.paging:
        return source.paging
    if _cockpit(source):
        return "page"
    return "page" if source.path and source.kind == "goal" else "offset"


def page_size_of(source: SourceConfig) -> int:
    """Records asked for per page: the source's ``page_size`` (default 1000 for page
    paging, 5000 for offset paging), clamped to what the route's body style allows."""
    paging = paging_of(source)
    asked = source.page_size or (1000 if paging == "page" else 5000)
    limit = MDA_MAX_LIMIT if paging == "offset" else COCKPIT_MAX_PAGE_SIZE
    return max(1, min(asked, limit))


def key_batch_of(source: SourceConfig) -> int:
    """Keys per look-up by key: a page's worth on the query route (``key IN [...]``),
    :data:`COCKPIT_KEY_BATCH` on the Cockpit list. The client batches by it and the
    poll engine counts a look-up's calls by it."""
    return page_size_of(source) if paging_of(source) == "offset" else COCKPIT_KEY_BATCH
