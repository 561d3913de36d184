"""``watcher sim``: serve the simulated Gainsight tenant on loopback until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import os
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sim",
        help="serve a simulated Gainsight tenant (for tests, benchmarks and the demo)",
        description=(
            "Serve a simulated Gainsight tenant. The access key is --access-key, else "
            "$GAINSIGHT_ACCESS_KEY, else 'sim-key'. Admin API under /__sim/ (docs/simulator.md)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port, 0 = any free (default 8787)")
    parser.add_argument("--access-key", default=None, metavar="K", help="the Accesskey to accept")
    parser.add_argument(
        "--companies", type=_count, default=1000, metavar="N", help="companies (default 1000)"
    )
    parser.add_argument("--ctas", type=_count, default=200, metavar="N", help="CTAs (default 200)")
    parser.add_argument(
        "--goals", type=_count, default=50, metavar="N", help="customer goals (default 50)"
    )
    parser.add_argument(
        "--mutations-per-min", type=float, default=0.0, metavar="M",
        help="random creates/updates/deletes per minute (default 0: data stays still)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=1, metavar="S", help="seed of the generated data (default 1)"
    )
    parser.add_argument(
        "--strict-docs",
        action="store_true",
        help="accept only what Gainsight documents: the Cockpit routes refuse undocumented "
        "operators and datetime values (400 COCKPIT_5102), no guessed goals route",
    )
    parser.add_argument(
        "--requests-per-minute", type=_count, default=100, metavar="N",
        help="rate limit per 60 s window (default 100, like the real API)",
    )  # fmt: skip
    parser.set_defaults(handler=run)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def run(args: argparse.Namespace) -> int:
    import asyncio

    key = args.access_key or os.environ.get("GAINSIGHT_ACCESS_KEY") or "sim-key"
    key_origin = (
        "--access-key"
        if args.access_key
        else "$GAINSIGHT_ACCESS_KEY"
        if os.environ.get("GAINSIGHT_ACCESS_KEY")
        else "the default (see docs/simulator.md)"
    )
    if args.mutations_per_min < 0:
        print("error: --mutations-per-min must be >= 0", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args, key, key_origin))
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1


async def _serve(args: argparse.Namespace, key: str, key_origin: str) -> int:
    import asyncio
    import signal

    from watcher.httpserve import EmbeddedServer, bind, server_config
    from watcher.sim import SimOptions, Tenant, create_app
    from watcher.sim.driver import drive_mutations

    sock = bind(args.host, args.port)
    tenant = Tenant(
        companies=args.companies,
        ctas=args.ctas,
        goals=args.goals,
        seed=args.seed,
        options=SimOptions(
            requests_per_minute=args.requests_per_minute, strict_docs=args.strict_docs
        ),
    )
    server = EmbeddedServer(server_config(create_app(tenant, key)))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.stop)
    stop = asyncio.Event()
    driver = None
    if args.mutations_per_min > 0:
        driver = asyncio.create_task(drive_mutations(tenant, args.mutations_per_min, stop=stop))
    host, port = sock.getsockname()[:2]
    print(
        f"watcher sim: serving http://{host}:{port} "
        f"({args.companies} companies, {args.ctas} CTAs, {args.goals} goals, seed {args.seed}, "
        f"{args.mutations_per_min:g} mutations/min"
        f"{'; strict docs' if args.strict_docs else ''}; access key from {key_origin})",
        flush=True,
    )
    try:
        await server.serve(sockets=[sock])
    finally:
        stop.set()
        if driver is not None:
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)
        sock.close()
    print("watcher sim: stopped", flush=True)
    return 0
