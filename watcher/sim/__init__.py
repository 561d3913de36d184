"""The simulated Gainsight tenant: seeded data, the query engines, faults, rate limits and
an admin API, served by a Starlette app (``watcher sim``; ``watcher.testing.sim`` in tests).

    tenant = Tenant(companies=50, ctas=20, goals=5, seed=1, clock=FakeClock())
    app = create_app(tenant, access_key="sim-key")
"""

from watcher.sim.app import create_app
from watcher.sim.options import Faults, SimOptions
from watcher.sim.tenant import Change, Tenant

__all__ = ["Change", "Faults", "SimOptions", "Tenant", "create_app"]
