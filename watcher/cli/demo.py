"""``watcher demo`` (what ``make run`` runs): every part on one screen, on loopback.

Starts the simulated tenant with a steady stream of changes, local webhook and
Slack receivers that print each delivery, and the daemon with
``examples/watcher.toml`` and the rules in ``rules/``, on a fresh SQLite file in a
temporary folder. Cron has minute granularity, so the demo polls incrementally
(and reads the delete logs) every ``--interval`` seconds instead. The first
deliveries show within about ten seconds. Ctrl-C stops every part cleanly.

The secrets are throwaway values made up for this run and handed over in
environment variables, as in production.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import socket
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from watcher.errors import ConfigError

if TYPE_CHECKING:
    from watcher.daemon.runner import Daemon
    from watcher.sim.tenant import Tenant

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "watcher.toml"
RULES = ROOT / "rules"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help="simulated tenant + daemon + local receivers on one screen (make run)",
    )
    parser.add_argument(
        "--companies", type=int, default=200, metavar="N", help="simulated companies (default 200)"
    )
    parser.add_argument(
        "--ctas", type=int, default=60, metavar="N", help="simulated CTAs (default 60)"
    )
    parser.add_argument(
        "--goals", type=int, default=20, metavar="N", help="simulated goals (default 20)"
    )
    parser.add_argument(
        "--mutations-per-min", type=float, default=30.0, metavar="M",
        help="changes the simulated tenant makes per minute (default 30)",
    )  # fmt: skip
    parser.add_argument(
        "--interval", type=float, default=5.0, metavar="SECONDS",
        help="poll incrementally every SECONDS (default 5; cron cannot go below a minute)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=7, metavar="S", help="seed of the simulated data (default 7)"
    )
    parser.add_argument(
        "--http-port", type=int, default=8790, metavar="P",
        help="port of the daemon's health/metrics/feed server (default 8790, or any free "
        "one when 8790 is taken)",
    )  # fmt: skip
    parser.add_argument(
        "--dir", type=Path, default=None, metavar="DIR",
        help="keep the config and the database in DIR (default: a temporary folder)",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=float, default=None, metavar="SECONDS",
        help="stop by itself after SECONDS (default: run until Ctrl-C)",
    )  # fmt: skip
    parser.add_argument(
        "--verbose", action="store_true", help="also show the daemon's info log lines"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from watcher.logging import configure_logging

    for needed in (EXAMPLE, RULES):
        if not needed.exists():
            raise ConfigError(
                f"{needed} not found: watcher demo runs from a clone of the repository "
                "(make run); installed elsewhere, use watcher sim and watcher run"
            )
    level = "info" if args.verbose else "warning"
    configure_logging(level=level)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_demo(args, args.dir))
    with tempfile.TemporaryDirectory(prefix="watcher-demo-") as tmp:
        return asyncio.run(_demo(args, Path(tmp)))


def demo_config(example: Mapping[str, Any], *, base_url: str, folder: Path, http_port: int) -> str:
    """The example config pointed at the simulated tenant and this run's folder (TOML)."""
    data: dict[str, Any] = {k: v for k, v in example.items()}
    data["gainsight"] = {**example["gainsight"], "base_url": base_url}
    data["store"] = {**example.get("store", {}), "path": str(folder / "watcher.db")}
    data["rules"] = {"paths": [str(RULES)]}
    data["http"] = {**example.get("http", {}), "listen": f"127.0.0.1:{http_port}"}
    return dump_toml(data)


async def _demo(args: argparse.Namespace, folder: Path) -> int:
    import asyncio

    from watcher.cli.run import build_daemon
    from watcher.daemon.lock import DaemonLock
    from watcher.sim.driver import drive_mutations
    from watcher.testing.receivers import SlackReceiver, WebhookReceiver
    from watcher.testing.sim import running_sim

    out = sys.stdout
    access_key = "demo-" + secrets.token_hex(16)
    feed_token = secrets.token_urlsafe(24)
    (folder / "feed-token").write_text(feed_token + "\n")
    (folder / "feed-token").chmod(0o600)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    crm, slack = WebhookReceiver(echo=out), SlackReceiver(echo=out)
    async with crm, slack:
        os.environ.update(
            GAINSIGHT_ACCESS_KEY=access_key,
            WATCHER_FEED_TOKEN=feed_token,
            SLACK_WEBHOOK_URL=slack.url("T0DEMO/B0DEMO/demo"),
            CRM_WEBHOOK_URL=crm.url,
            CRM_WEBHOOK_SECRET="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        )
        with running_sim(
            companies=args.companies,
            ctas=args.ctas,
            goals=args.goals,
            seed=args.seed,
            access_key=access_key,
        ) as sim:
            example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
            config_file = folder / "watcher.toml"
            config_file.write_text(
                demo_config(
                    example,
                    base_url=sim.base_url,
                    folder=folder,
                    http_port=free_or_any(args.http_port),
                )
            )
            from watcher.config import load_config

            config = load_config(config_file)
            _banner(out, args, sim.base_url, folder)
            driver = asyncio.create_task(
                drive_mutations(sim.tenant, args.mutations_per_min, stop=stop)
            )
            with DaemonLock(folder / "watcher.db"):
                daemon = build_daemon(config, config_file, grace_s=5.0, every_s=args.interval)

                def stop_all() -> None:
                    """Ctrl-C: stop the driver and the daemon (twice: stop at once)."""
                    stop.set()
                    daemon.request_stop()

                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop_all)
                loop.add_signal_handler(signal.SIGHUP, daemon.request_reload)
                if args.duration is not None:
                    loop.call_later(args.duration, stop_all)
                kick = asyncio.create_task(
                    _kick_off(daemon, sim.tenant, len(config.sources), out, folder)
                )
                try:
                    code = await daemon.run()
                finally:
                    stop.set()
                    kick.cancel()
                    for result in await asyncio.gather(driver, kick, return_exceptions=True):
                        if isinstance(result, Exception):
                            print(f"demo: {type(result).__name__}: {result}", file=sys.stderr)
    print(
        f"demo stopped: {len(crm.received)} webhook and {len(slack.received)} Slack "
        "deliveries received",
        file=out,
        flush=True,
    )
    return code


async def _kick_off(
    daemon: Daemon, tenant: Tenant, sources: int, out: TextIO, folder: Path
) -> None:
    """Once the baseline is in, make one change per shipped rule, so the first
    deliveries show at the next poll rather than whenever chance matches a rule."""
    await daemon.started.wait()
    _endpoints(out, folder, daemon.http_port)
    await daemon.wait_for_polls(sources)
    for line in stage_changes(tenant):
        print(line, file=out, flush=True)


def stage_changes(tenant: Tenant) -> list[str]:
    """One change per shipped rule; a line for each saying what changed, by label."""
    companies = tenant.keys("Company")
    ctas = tenant.keys("call_to_action")
    goals = tenant.keys("cs_goal")
    label = tenant.picklists.label

    def user(gsid: Any) -> str:
        row = tenant.get("gsuser", str(gsid)) if gsid else None
        return str(row.get("Name")) if row else "nobody"

    lines = ["demo: changed the tenant once per rule (random changes follow):"]
    first = tenant.get("Company", companies[0]) or {}
    arr = float(first.get("Arr") or 1e5)
    tenant.update("Company", companies[0], {"Arr": round(arr * 0.8, 2)})
    lines.append(f"  company {first.get('Name')}: Arr {arr:,.2f} -> {arr * 0.8:,.2f} (-20%)")
    second = tenant.get("Company", companies[1]) or {}
    csm = next(u for u in tenant.user_ids if u != second.get("Csm"))
    tenant.update("Company", companies[1], {"Csm": csm})
    lines.append(f"  company {second.get('Name')}: CSM {user(second.get('Csm'))} -> {user(csm)}")
    name = "Usage dropped 40% (demo)"
    tenant.create("call_to_action", {"TypeId": "Risk", "Name": name})
    lines.append(f"  CTA created: Risk {name!r}")
    cta = tenant.get("call_to_action", ctas[0]) or {}
    tenant.update("call_to_action", ctas[0], {"StatusId": "Closed Success"})
    lines.append(
        f"  CTA {cta.get('Name')!r}: Status {label(cta.get('StatusId'))} -> Closed Success"
    )
    if goals:
        goal = tenant.get("cs_goal", goals[0]) or {}
        tenant.update("cs_goal", goals[0], {"Status": "Completed"})
        lines.append(
            f"  goal {goal.get('Name')!r}: Status {label(goal.get('Status'))} -> Completed"
        )
    return lines


def _banner(out: Any, args: argparse.Namespace, sim_url: str, folder: Path) -> None:
    print(
        "\n".join(
            [
                "gainsight-watcher demo - Ctrl-C stops everything",
                f"  simulated tenant  {sim_url}  ({args.companies} companies, {args.ctas} CTAs,"
                f" {args.goals} goals, {args.mutations_per_min:g} changes/min)",
                f"  daemon            config {folder / 'watcher.toml'}, rules {RULES}",
                f"                    polls every {args.interval:g}s (demo); database "
                f"{folder / 'watcher.db'}",
            ]
        ),
        file=out,
        flush=True,
    )


def _endpoints(out: Any, folder: Path, port: int | None) -> None:
    base = f"http://127.0.0.1:{port}"
    print(
        "\n".join(
            [
                f"  status page       {base}/   (or: watcher status --config "
                f"{folder / 'watcher.toml'})",
                f"  health / metrics  {base}/readyz  {base}/metrics",
                "  pull feed         curl -H "
                f'"Authorization: Bearer $(cat {folder / "feed-token"})" '
                f'"{base}/v1/events?after=0&wait=30"',
                "  receivers print each delivery below (slack <- ..., webhook <- ...)",
                "",
            ]
        ),
        file=out,
        flush=True,
    )


def free_or_any(port: int) -> int:
    """``port`` when it is free on loopback, else 0 (any free port)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def dump_toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer for config-shaped data (tables, arrays of tables, scalars,
    lists of scalars) - enough to write a validated config back out."""
    lines: list[str] = []
    _table(lines, [], data)
    return "\n".join(lines) + "\n"


def _table(lines: list[str], path: list[str], data: Mapping[str, Any]) -> None:
    scalars = {k: v for k, v in data.items() if not _is_table(v) and not _is_table_list(v)}
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in data.items():
        if _is_table(value):
            lines.append("")
            lines.append(f"[{'.'.join(_key(p) for p in [*path, key])}]")
            _table(lines, [*path, key], value)
        elif _is_table_list(value):
            for item in value:
                lines.append("")
                lines.append(f"[[{'.'.join(_key(p) for p in [*path, key])}]]")
                _table(lines, [*path, key], item)


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _key(key: str) -> str:
    bare = key.replace("-", "").replace("_", "").isalnum()
    return key if bare else _value(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
