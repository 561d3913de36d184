"""End to end: a change made in the simulated tenant, polled, routed by the shipped
``arr-drop`` rule, reaches Slack (readable) and the webhook (signed); a change no rule
matches sends nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from tests.delivery.conftest import SECRET
from watcher.clock import SystemClock
from watcher.config import parse_config
from watcher.delivery.dispatcher import Dispatcher
from watcher.delivery.sinks import build_sinks
from watcher.gainsight.connect import open_client
from watcher.poll import Poller
from watcher.rules.loader import load_rules
from watcher.rules.match import build_router
from watcher.store.db import open_database
from watcher.store.store import Store
from watcher.testing.receivers import SlackReceiver, WebhookReceiver
from watcher.testing.sim import running_sim

ROOT = Path(__file__).resolve().parents[2]


async def test_arr_drop_in_the_sim_reaches_slack_and_a_signed_webhook(tmp_path: Path) -> None:
    clock = SystemClock()
    async with WebhookReceiver() as crm, SlackReceiver() as slack:
        env = {
            "GS_KEY": "sim-key",
            "SLACK_URL": slack.url(),
            "CRM_URL": crm.url,
            "CRM_SECRET": SECRET,
        }
        with running_sim(companies=6, ctas=1, goals=1, seed=7, access_key="sim-key") as sim:
            config = parse_config(
                {
                    "gainsight": {"base_url": sim.base_url, "access_key_env": "GS_KEY"},
                    "rules": {"paths": [str(ROOT / "rules")]},
                    "sources": [
                        {
                            "name": "companies",
                            "kind": "company",
                            "select": ["Gsid", "Name", "Arr", "Stage", "Csm", "RenewalDate"],
                        },
                        {"name": "ctas", "kind": "cta"},
                        {"name": "goals", "kind": "goal"},
                    ],
                    "sinks": {
                        "ops-slack": {"type": "slack", "url_env": "SLACK_URL"},
                        "crm": {
                            "type": "webhook",
                            "url_env": "CRM_URL",
                            "secret_env": "CRM_SECRET",
                        },
                    },
                }
            )
            rules = load_rules(config, base_dir=tmp_path)
            db = open_database(tmp_path / "watcher.db")
            store = Store(db, clock=clock)
            source = config.source("companies")
            async with open_client(config, clock=clock, base_dir=tmp_path, environ=env) as client:
                poller = Poller(
                    store,
                    client,
                    host=config.gainsight.host,
                    clock=clock,
                    matcher=build_router(rules),
                )
                await poller.poll(source, "full")  # silent baseline
                dropped, nudged = sim.tenant.keys("Company")[:2]
                arr = _stored(sim.tenant.get("Company", dropped))["Arr"] or 100000.0
                sim.tenant.update("Company", dropped, {"Arr": round(arr * 0.5, 2)})
                other = _stored(sim.tenant.get("Company", nudged))["Arr"] or 100000.0
                sim.tenant.update("Company", nudged, {"Arr": round(other * 0.99, 2)})
                result = await poller.poll(source, "full")
                assert result.updated == 2
        async with httpx.AsyncClient() as http:
            sinks = build_sinks(config, http=http, clock=clock, environ=env)
            dispatcher = Dispatcher(
                db, sinks, clock=clock, rules=list(rules), sink_configs=config.sinks
            )
            stats = await dispatcher.run_until_idle()
        assert stats.delivered == 2  # arr-drop -> ops-slack and crm, for one company only
        (message,) = slack.messages()
        name = _stored(sim.tenant.get("Company", dropped))["Name"]
        assert message["text"].startswith(f"{name}: Arr ")
        assert "(\u221250.0%)" in json.dumps(message, ensure_ascii=False)
        (request,) = crm.received
        body = Webhook(SECRET).verify(request.body, request.headers)
        assert body["data"]["key"] == dropped
        db.conn.close()
        store.close()


def _stored(record: dict[str, Any] | None) -> dict[str, Any]:
    """A record the simulated tenant must hold."""
    assert record is not None
    return record
