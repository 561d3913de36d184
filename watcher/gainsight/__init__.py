"""The async Gainsight client: request budget, query bodies, envelope parsing.

Use :func:`open_client` (config -> client) in the daemon and CLI; tests build
:class:`GainsightClient` around their own ``httpx.AsyncClient``.
"""

from watcher.gainsight.budget import Budget, BudgetStats, Priority
from watcher.gainsight.client import (
    ClientStats,
    DeletedRecord,
    GainsightClient,
    Page,
    PingResult,
)
from watcher.gainsight.connect import (
    budget_from_config,
    check_connection,
    open_client,
)
from watcher.gainsight.query import Condition, keys_in, modified_since

__all__ = [
    "Budget",
    "BudgetStats",
    "ClientStats",
    "Condition",
    "DeletedRecord",
    "GainsightClient",
    "Page",
    "PingResult",
    "Priority",
    "budget_from_config",
    "check_connection",
    "keys_in",
    "modified_since",
    "open_client",
]
