"""Run the simulated Gainsight tenant on a loopback socket for a test.

    from watcher.testing.sim import running_sim

    with running_sim(companies=50, ctas=20, goals=5, seed=1, clock=FakeClock()) as sim:
        sim.base_url   # "http://127.0.0.1:<port>": real uvicorn in a thread
        sim.tenant     # admin methods: mutate(), changes(after_seq), options, faults
        sim.app        # the ASGI app, for httpx.ASGITransport

Extra keyword arguments set :class:`~watcher.sim.options.SimOptions` or
:class:`~watcher.sim.options.Faults` fields (``empty_form="result_false"``,
``error_rate=0.5``); an unknown name raises ``TypeError``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from watcher.clock import Clock
from watcher.httpserve import EmbeddedServer, bind, server_config
from watcher.sim.app import create_app
from watcher.sim.options import Faults, SimOptions, split_settings
from watcher.sim.tenant import Tenant

_START_TIMEOUT = 10.0


@dataclass
class RunningSim:
    base_url: str
    tenant: Tenant
    app: Starlette
    access_key: str

    @property
    def headers(self) -> dict[str, str]:
        """Request headers carrying the access key."""
        return {"Accesskey": self.access_key, "Content-Type": "application/json"}


def build_sim(
    *,
    companies: int = 50,
    ctas: int = 20,
    goals: int = 5,
    seed: int = 1,
    access_key: str = "sim-key",
    clock: Clock | None = None,
    **settings: Any,
) -> tuple[Tenant, Starlette]:
    """A tenant and its app without a server (for ``httpx.ASGITransport``)."""
    opts, flts = split_settings(settings)
    tenant = Tenant(
        companies=companies,
        ctas=ctas,
        goals=goals,
        seed=seed,
        clock=clock,
        options=SimOptions(**opts),
        faults=Faults(**flts),
    )
    return tenant, create_app(tenant, access_key)


@contextmanager
def serve(app: Starlette, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yield its base URL."""
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    server = EmbeddedServer(server_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = _START_TIMEOUT
        while not server.ready.wait(0.05):
            deadline -= 0.05
            if not thread.is_alive() or deadline <= 0:
                raise RuntimeError("the simulated tenant did not start")
        yield f"http://{host}:{bound_port}"
    finally:
        server.stop()
        thread.join(timeout=_START_TIMEOUT)
        sock.close()


@contextmanager
def running_sim(
    *,
    companies: int = 50,
    ctas: int = 20,
    goals: int = 5,
    seed: int = 1,
    access_key: str = "sim-key",
    clock: Clock | None = None,
    **settings: Any,
) -> Iterator[RunningSim]:
    """A simulated tenant on an ephemeral loopback port for the duration of the block."""
    tenant, app = build_sim(
        companies=companies,
        ctas=ctas,
        goals=goals,
        seed=seed,
        access_key=access_key,
        clock=clock,
        **settings,
    )
    with serve(app) as base_url:
        yield RunningSim(base_url=base_url, tenant=tenant, app=app, access_key=access_key)
