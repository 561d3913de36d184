"""Webhook deliveries over loopback: signed, CloudEvents, retried, ordered, never lost."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from standardwebhooks.webhooks import Webhook
from structlog.testing import capture_logs

from tests.delivery.conftest import SECRET, Harness, arr_change
from watcher.testing.receivers import Reply, WebhookReceiver

ARR_DROP = {
    "name": "arr-drop",
    "sinks": ["crm"],
    "when": [{"field": "Arr", "decreased_by_pct": 10}],
}


def crm(receiver: WebhookReceiver, **extra: Any) -> dict[str, Any]:
    return {"crm": {"type": "webhook", "url": receiver.url, "secret_env": "WH_SECRET", **extra}}


async def test_matching_change_arrives_signed_as_a_cloudevent_and_non_matching_does_not(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook), ARR_DROP)
    (stored,) = h.commit(arr_change("C1", 100000.0, 90000.0))
    h.commit(arr_change("C2", 100000.0, 95000.0))  # a 5% drop: no rule matches
    stats = await h.dispatcher.run_until_idle()
    assert stats.delivered == 1
    (request,) = webhook.received
    assert request.headers["content-type"] == "application/cloudevents+json"
    assert request.headers["webhook-id"] == stored["id"]
    # the official Standard Webhooks verifier accepts our signature
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["data"]["changes"]["Arr"] == {"old": 100000.0, "new": 90000.0}
    # the official CloudEvents SDK parses the body as a structured-mode event
    ce = from_http_event(HTTPMessage(headers=request.headers, body=request.body))
    assert ce.get_id() == stored["id"]
    assert ce.get_type() == "gainsight.company.updated"
    assert ce.get_extension("sequence") == stored["sequence"]
    data = ce.get_data()
    assert isinstance(data, dict)
    assert data["key"] == "C1"
    assert json.loads(request.body) == stored  # body = the event exactly as stored


async def test_receiver_down_for_hours_gets_everything_in_per_key_order_once_back(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook), {"name": "all", "sinks": ["crm"]})
    for n in range(10):
        for key in ("A", "B", "C"):
            h.commit(arr_change(key, 100.0 + n, 101.0 + n, n))
    await webhook.stop()
    stats = await h.dispatcher.run_until_idle()
    assert stats.delivered == 0
    assert stats.failed >= 3
    h.clock.advance(3 * 3600)  # hours pass (fake clock: instantly)
    await webhook.start()
    webhook.then(Reply(503, {"retry-after": "7"}), Reply(500), Reply(200), Reply(503))
    stats = await h.dispatcher.run_until_idle(settle=True)
    assert h.statuses() == {"delivered": 30}
    bodies = [json.loads(r.body) for r in webhook.ok]
    assert len(bodies) == 30
    assert len({b["id"] for b in bodies}) == 30  # each event delivered once here
    for key in ("A", "B", "C"):
        seqs = [b["sequence"] for b in bodies if b["data"]["key"] == key]
        assert seqs == sorted(seqs)
        assert len(seqs) == 10


async def test_retry_after_is_honoured_and_schedule_applies_otherwise(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook), ARR_DROP)
    h.commit(arr_change("C1", 100.0, 50.0))
    webhook.respond(429, {"retry-after": "120"})
    start = h.clock.now().timestamp()
    await h.dispatcher.run_until_idle()
    (row,) = h.dispatcher.outbox.list_deliveries()
    assert row.attempts == 1
    assert row.status == "pending"
    assert row.next_attempt_at == pytest.approx(start + 120)
    webhook.respond(500)
    h.clock.advance(120)
    await h.dispatcher.run_until_idle()
    (row,) = h.dispatcher.outbox.list_deliveries()
    # attempt 2 failed without Retry-After: the third delay (5 min) +-10% jitter
    assert 270 <= row.next_attempt_at - h.clock.now().timestamp() <= 330


async def test_delivery_is_dead_after_the_last_attempt_and_can_be_retried(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook, retry_schedule=["0s", "5s", "1m"]), ARR_DROP)
    h.commit(arr_change("C1", 100.0, 50.0))
    webhook.respond(500)
    with capture_logs() as logs:
        stats = await h.dispatcher.run_until_idle(settle=True)
    assert stats.dead == 1
    assert stats.failed == 2
    (row,) = h.dispatcher.outbox.list_deliveries(status="dead")
    assert row.attempts == 3
    assert "HTTP 500" in (row.last_error or "")
    events = [entry["event"] for entry in logs]
    assert events == ["delivery.failed", "delivery.failed", "delivery.dead"]
    assert {"delivery_id", "event_id", "rule", "sink", "attempt", "error"} <= set(logs[-1])
    assert all(webhook.url not in json.dumps(entry, default=str) for entry in logs)
    webhook.respond(200)
    assert h.dispatcher.outbox.retry_dead(h.clock.now()) == 1
    await h.dispatcher.run_until_idle()
    assert h.statuses() == {"delivered": 1}


async def test_client_error_is_dead_at_once(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook), ARR_DROP)
    h.commit(arr_change("C1", 100.0, 50.0))
    webhook.respond(400)
    stats = await h.dispatcher.run_until_idle()
    assert stats.dead == 1
    assert len(webhook.received) == 1


async def test_410_pauses_the_sink_keeps_deliveries_and_resume_delivers_them(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook, concurrency=1), ARR_DROP)
    h.commit(arr_change("C1", 100.0, 50.0), arr_change("C2", 100.0, 50.0))
    webhook.respond(410)
    with capture_logs() as logs:
        await h.dispatcher.run_until_idle(settle=True)
    assert len(webhook.received) == 1  # paused after the first 410: nothing more sent
    assert h.dispatcher.outbox.pauses().sinks == {"crm"}
    assert any(e["event"] == "sink.paused" and e["sink"] == "crm" for e in logs)
    assert h.statuses() == {"pending": 2}
    webhook.respond(200)
    assert h.dispatcher.outbox.resume("sink", "crm")
    await h.dispatcher.run_until_idle()
    assert h.statuses() == {"delivered": 2}


async def test_paused_rule_waits_and_nothing_is_dropped(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook), ARR_DROP)
    h.dispatcher.outbox.pause("rule", "arr-drop", reason="noisy", now=h.clock.now())
    h.commit(arr_change("C1", 100.0, 50.0))
    await h.dispatcher.run_until_idle(settle=True)
    assert webhook.received == []
    assert h.statuses() == {"pending": 1}
    h.dispatcher.outbox.resume("rule", "arr-drop")
    await h.dispatcher.run_until_idle()
    assert h.statuses() == {"delivered": 1}


async def test_throttle_suppresses_over_the_limit_per_key(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    rule = {**ARR_DROP, "throttle": {"per": "key", "max": 1, "window": "1h"}}
    h = harness(crm(webhook), rule)
    h.commit(arr_change("C1", 100.0, 50.0, 1), arr_change("C1", 50.0, 20.0, 2))
    h.commit(arr_change("C2", 100.0, 50.0, 3))
    await h.dispatcher.run_until_idle()
    assert h.statuses() == {"delivered": 2, "suppressed": 1}
    h.clock.advance(3601)
    h.commit(arr_change("C1", 20.0, 10.0, 4, time="2026-11-23T17:00:01.000Z"))  # 1h later
    await h.dispatcher.run_until_idle()
    assert h.statuses() == {"delivered": 3, "suppressed": 1}


async def test_queued_deliveries_survive_a_restart_with_the_same_event_id(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook), ARR_DROP)
    (stored,) = h.commit(arr_change("C1", 100.0, 50.0))
    await webhook.stop()
    await h.dispatcher.run_until_idle()  # attempt 1 fails: the "process" then dies
    await webhook.start()
    h.clock.advance(60)
    restarted = h.new_dispatcher()
    await restarted.run_until_idle()
    (request,) = webhook.received
    assert request.headers["webhook-id"] == stored["id"]
    (row,) = restarted.outbox.list_deliveries()
    assert row.status == "delivered"
    assert row.attempts == 2


async def test_random_failures_never_reorder_a_key_and_lose_nothing(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    """Seeded random 500/503/429 answers, concurrency 4: per key, even the *attempts*
    arrive in event order, and every event is finally delivered."""
    import random

    rng = random.Random(4)
    schedule = ["0s"] + ["1s"] * 30  # enough attempts that no delivery can run out
    h = harness(crm(webhook, retry_schedule=schedule), {"name": "all", "sinks": ["crm"]})
    for n in range(60):
        h.commit(arr_change(f"K{rng.randrange(5)}", 1.0, 2.0, n))
    webhook.then(*(Reply(rng.choice([200, 200, 500, 503, 429])) for _ in range(150)))
    await h.dispatcher.run_until_idle(settle=True)
    assert h.statuses() == {"delivered": 60}
    attempts = [json.loads(r.body) for r in webhook.received]
    for key in {a["data"]["key"] for a in attempts}:
        seqs = [a["sequence"] for a in attempts if a["data"]["key"] == key]
        assert seqs == sorted(seqs)
    assert len({json.loads(r.body)["id"] for r in webhook.ok}) == 60


async def test_a_delivery_whose_outcome_cannot_be_recorded_is_repeated_with_the_same_id(
    harness: Callable[..., Harness], webhook: WebhookReceiver, tmp_path: Path
) -> None:
    """The store is locked when the success should be written: the row stays pending,
    the dispatcher says so and stops; the next round delivers again, same webhook-id."""
    h = harness(crm(webhook), ARR_DROP)
    (stored,) = h.commit(arr_change("C1", 100.0, 50.0))
    h.db.conn.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(tmp_path / "watcher.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    with capture_logs() as logs:
        await h.dispatcher.run_until_idle()
    assert [e["event"] for e in logs] == ["dispatcher.store_error"]
    other.execute("ROLLBACK")
    other.close()
    await h.dispatcher.run_until_idle()
    assert h.statuses() == {"delivered": 1}
    assert [r.headers["webhook-id"] for r in webhook.received] == [stored["id"]] * 2


async def test_throttle_per_rule_counts_every_key(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    rule = {**ARR_DROP, "throttle": {"per": "rule", "max": 2, "window": "10m"}}
    h = harness(crm(webhook, concurrency=1), rule)
    h.commit(*(arr_change(f"C{n}", 100.0, 50.0, n) for n in range(4)))
    await h.dispatcher.run_until_idle()
    assert h.statuses() == {"delivered": 2, "suppressed": 2}
    (row, *_) = h.dispatcher.outbox.list_deliveries(status="suppressed")
    assert "throttled: rule 'arr-drop' allows 2 per rule per 10m" in (row.last_error or "")


async def test_digest_rule_on_a_webhook_sends_each_event_in_order_when_the_window_closes(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook), {**ARR_DROP, "digest": "5m"})
    h.commit(arr_change("C1", 100.0, 50.0, 1), arr_change("C1", 50.0, 20.0, 2))
    await h.dispatcher.run_until_idle()
    assert webhook.received == []
    (row, _) = h.dispatcher.outbox.list_deliveries()
    assert row.next_attempt_at >= h.clock.now().timestamp() + 299  # deferred to window end
    await h.dispatcher.run_until_idle(settle=True)
    assert [json.loads(r.body)["id"] for r in webhook.received] == ["evt-C1-1", "evt-C1-2"]


async def test_delivery_outcomes_are_counted_where_they_happen_whatever_is_logged(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    """/metrics counts come from the dispatcher's counter, not from log lines: a
    dispatcher whose log lines go nowhere still counts delivered, failed and dead."""
    from structlog.testing import CapturingLogger

    from watcher.daemon.metrics import Metrics
    from watcher.delivery.dispatcher import Dispatcher
    from watcher.logging import Logger

    h = harness(crm(webhook, retry_schedule=["0s", "5s"]), {"name": "all", "sinks": ["crm"]})
    metrics = Metrics()
    quiet: Logger = structlog.wrap_logger(CapturingLogger(), processors=[lambda *_: {}])
    dispatcher = Dispatcher(
        h.db,
        h.sinks,
        clock=h.clock,
        rules=list(h.rules),
        logger=quiet,
        counter=metrics,
        sink_configs=h.config.sinks,
    )
    h.commit(arr_change("C1", 100.0, 50.0))
    await dispatcher.run_until_idle()
    webhook.respond(500)
    h.commit(arr_change("C2", 100.0, 50.0))
    await dispatcher.run_until_idle(settle=True)
    text = metrics.render().decode()
    assert 'watcher_delivery_attempts_total{outcome="delivered",sink="crm"} 1.0' in text
    assert 'watcher_delivery_attempts_total{outcome="failed",sink="crm"} 1.0' in text
    assert 'watcher_delivery_attempts_total{outcome="dead",sink="crm"} 1.0' in text
