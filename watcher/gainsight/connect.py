"""Building a client from config, and ``watcher check --connect``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from watcher.clock import Clock, SystemClock
from watcher.config import WatcherConfig, resolve_secret
from watcher.errors import TransientError
from watcher.gainsight.budget import Budget
from watcher.gainsight.client import GainsightClient
from watcher.gainsight.probe import Probe, probe_source


def budget_from_config(config: WatcherConfig, clock: Clock) -> Budget:
    gs = config.gainsight
    return Budget(gs.requests_per_minute, gs.requests_per_day, clock)


@asynccontextmanager
async def open_client(
    config: WatcherConfig,
    *,
    clock: Clock,
    base_dir: Path,
    budget: Budget | None = None,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    max_retries: int | None = None,
) -> AsyncIterator[GainsightClient]:
    """An open :class:`GainsightClient` for ``config`` (one per tenant: share it).

    Creates the ``httpx.AsyncClient`` with timeouts on and redirects off, and a
    :class:`Budget` from ``requests_per_minute`` / ``requests_per_day`` unless
    one is given. Raises :class:`~watcher.errors.SecretError` when the access
    key cannot be resolved.
    """
    gs = config.gainsight
    key = resolve_secret(gs.access_key, environ=environ, base_dir=base_dir)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(gs.timeout_s, connect=min(gs.timeout_s, 10.0)),
        follow_redirects=False,
        transport=transport,
        headers={"User-Agent": "gainsight-watcher"},
    ) as http:
        yield GainsightClient(
            http,
            base_url=gs.base_url,
            access_key=key,
            budget=budget or budget_from_config(config, clock),
            clock=clock,
            max_retries=gs.max_retries if max_retries is None else max_retries,
            timeout_s=gs.timeout_s,
        )


async def ping_config(
    config: WatcherConfig,
    *,
    base_dir: Path,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str:
    """One cheap call; a one-line description of what was reached."""
    async with open_client(
        config,
        clock=clock or SystemClock(),
        base_dir=base_dir,
        environ=environ,
        transport=transport,
        max_retries=1,
    ) as client:
        try:
            result = await client.ping()
        except TransientError as exc:
            raise TransientError(
                f"gainsight.base_url {config.gainsight.base_url} is not answering: {exc}",
                error_code=exc.error_code,
                request_id=exc.request_id,
                status=exc.status,
            ) from exc
    return f"reached {config.gainsight.base_url} (request id {result.request_id or 'none'})"


async def probe_config(
    config: WatcherConfig,
    *,
    base_dir: Path,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, list[Probe]]:
    """Each source's requests, once, tiny (``watcher check --connect``)."""
    clock = clock or SystemClock()
    out: dict[str, list[Probe]] = {}
    async with open_client(
        config,
        clock=clock,
        base_dir=base_dir,
        environ=environ,
        transport=transport,
        max_retries=1,
    ) as client:
        for source in config.sources:
            out[source.name] = await probe_source(client, source, now=clock.now())
    return out


def probe_sources(
    config: WatcherConfig,
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, list[Probe]]:
    return asyncio.run(
        probe_config(
            config,
            base_dir=base_dir,
            environ=os.environ if environ is None else environ,
            transport=transport,
        )
    )


def check_connection(
    config: WatcherConfig,
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str:
    """``watcher check --connect``: one ``ping()``; raises SourceError subclasses."""
    return asyncio.run(
        ping_config(
            config,
            base_dir=base_dir,
            environ=os.environ if environ is None else environ,
            transport=transport,
        )
    )
