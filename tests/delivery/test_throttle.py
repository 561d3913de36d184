"""Throttle, retry and replay under failures and pauses (issue 14 items 11-14, issue 12
item 15): suppression counts only what was sent, windows are event time, an explicit
retry sends, a replay keeps (or with --new-ids renews) the webhook-id."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.delivery.conftest import SECRET, Harness, arr_change
from watcher.core.events import delete_held_event
from watcher.testing.receivers import Reply, SlackReceiver, WebhookReceiver

T0 = "2026-11-23T16:00:00.000Z"


def crm(receiver: WebhookReceiver, **extra: Any) -> dict[str, Any]:
    return {"crm": {"type": "webhook", "url": receiver.url, "secret_env": "WH_SECRET", **extra}}


def arr_rule(per: str = "key", max_: int = 1, window: str = "1h") -> dict[str, Any]:
    return {
        "name": "arr-drop",
        "sinks": ["crm"],
        "when": [{"field": "Arr", "decreased_by_pct": 10}],
        "throttle": {"per": per, "max": max_, "window": window},
    }


def at(hours: float) -> str:
    stamp = datetime(2026, 11, 23, 16, tzinfo=UTC).timestamp() + hours * 3600
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def statuses_by_event(h: Harness) -> dict[str, str]:
    return {r.event_id: r.status for r in h.dispatcher.outbox.list_deliveries()}


# -- item 11 ---------------------------------------------------------------------------


async def test_a_delivery_that_died_does_not_use_up_the_throttle(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    """max = 1 per rule and the receiver refuses the first: it was 1 dead, 3 suppressed,
    0 delivered. The dead one was never delivered, so the next one goes out."""
    h = harness(crm(webhook, concurrency=1), arr_rule(per="rule"))
    h.commit(*(arr_change(f"C{n}", 100.0, 50.0, n) for n in range(4)))
    webhook.then(Reply(400))  # the first attempt is refused for good, then 200s
    await h.dispatcher.run_until_idle(settle=True)
    assert h.statuses() == {"dead": 1, "delivered": 1, "suppressed": 2}
    assert statuses_by_event(h)["evt-C0-0"] == "dead"
    assert statuses_by_event(h)["evt-C1-1"] == "delivered"


async def test_a_receiver_that_fails_until_dead_never_causes_suppression(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    """While a delivery is being retried it holds the throttle's place; the others wait
    for its outcome rather than being suppressed in its favour."""
    h = harness(crm(webhook, retry_schedule=["0s", "1s", "1s"]), arr_rule(per="rule"))
    h.commit(*(arr_change(f"C{n}", 100.0, 50.0, n) for n in range(4)))
    webhook.respond(500)
    await h.dispatcher.run_until_idle()
    assert h.statuses() == {"pending": 4}  # one attempted, three waiting: none suppressed
    await h.dispatcher.run_until_idle(settle=True)
    assert h.statuses() == {"dead": 4}


async def test_a_retried_delivery_that_then_arrives_takes_the_throttle(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook, retry_schedule=["0s", "5s"]), arr_rule(per="rule"))
    h.commit(*(arr_change(f"C{n}", 100.0, 50.0, n) for n in range(3)))
    webhook.then(Reply(503))
    await h.dispatcher.run_until_idle(settle=True)
    assert h.statuses() == {"delivered": 1, "suppressed": 2}
    assert statuses_by_event(h)["evt-C0-0"] == "delivered"


# -- item 12 ---------------------------------------------------------------------------


async def test_a_pause_never_turns_into_suppression(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    """Two ARR drops of one company 5 h apart, rule paused meanwhile: both were due
    at resume, the second was suppressed. Windows are event time: both go out."""
    h = harness(crm(webhook), arr_rule())
    h.dispatcher.outbox.pause("rule", "arr-drop", reason="review", now=h.clock.now())
    h.commit(arr_change("C1", 100.0, 80.0, 1, time=at(0)))
    h.clock.advance(5 * 3600)
    h.commit(arr_change("C1", 80.0, 60.0, 2, time=at(5)))
    await h.dispatcher.run_until_idle()
    assert h.statuses() == {"pending": 2}
    h.dispatcher.outbox.resume("rule", "arr-drop")
    await h.dispatcher.run_until_idle(settle=True)
    assert h.statuses() == {"delivered": 2}
    ids = [json.loads(r.body)["id"] for r in webhook.ok]
    assert ids == ["evt-C1-1", "evt-C1-2"]


async def test_an_outage_never_turns_into_suppression(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook), arr_rule())
    await webhook.stop()
    h.commit(arr_change("C1", 100.0, 80.0, 1, time=at(0)))
    await h.dispatcher.run_until_idle()
    h.clock.advance(5 * 3600)
    h.commit(arr_change("C1", 80.0, 60.0, 2, time=at(5)))
    await webhook.start()
    await h.dispatcher.run_until_idle(settle=True)
    assert h.statuses() == {"delivered": 2}


async def test_after_a_pause_changes_close_in_event_time_are_still_throttled(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook), arr_rule())
    h.dispatcher.outbox.pause("rule", "arr-drop", reason="review", now=h.clock.now())
    h.commit(arr_change("C1", 100.0, 80.0, 1, time=at(0)))
    h.commit(arr_change("C1", 80.0, 60.0, 2, time=at(0.5)))
    h.commit(arr_change("C1", 60.0, 40.0, 3, time=at(1.01)))
    h.clock.advance(5 * 3600)
    h.dispatcher.outbox.resume("rule", "arr-drop")
    await h.dispatcher.run_until_idle(settle=True)
    assert statuses_by_event(h) == {
        "evt-C1-1": "delivered",
        "evt-C1-2": "suppressed",
        "evt-C1-3": "delivered",  # more than 1 h after the one delivered
    }


# -- item 13 ---------------------------------------------------------------------------


async def test_an_explicit_retry_of_a_suppressed_delivery_sends_it(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    """``deliveries retry`` of a suppressed delivery was suppressed again at once."""
    h = harness(crm(webhook), arr_rule())
    h.commit(arr_change("C1", 100.0, 80.0, 1), arr_change("C1", 80.0, 60.0, 2))
    await h.dispatcher.run_until_idle()
    (suppressed,) = h.dispatcher.outbox.list_deliveries(status="suppressed")
    assert h.dispatcher.outbox.retry(suppressed.id, h.clock.now())
    await h.dispatcher.run_until_idle()
    assert h.statuses() == {"delivered": 2}
    assert [json.loads(r.body)["id"] for r in webhook.ok] == ["evt-C1-1", "evt-C1-2"]


async def test_retrying_dead_deliveries_of_a_throttled_rule_sends_them(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook), arr_rule(per="rule", max_=1))
    h.commit(arr_change("C1", 100.0, 80.0, 1), arr_change("C2", 100.0, 80.0, 2))
    webhook.then(Reply(400), Reply(400))
    await h.dispatcher.run_until_idle(settle=True)
    assert h.statuses() == {"dead": 2}
    assert h.dispatcher.outbox.retry_dead(h.clock.now()) == 2
    await h.dispatcher.run_until_idle(settle=True)
    assert h.statuses() == {"delivered": 2}


# -- replay: webhook-id ------------------------------------------------------------------


async def test_a_replay_keeps_the_webhook_id_and_new_ids_give_a_fresh_signed_one(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook), {"name": "all", "sinks": ["crm"]})
    (stored,) = h.commit(arr_change("C1", 100.0, 80.0))
    await h.dispatcher.run_until_idle()
    outbox = h.dispatcher.outbox
    for message_id in (None, "replay-1234"):
        outbox.queue(
            routes=[("all", "crm")],
            event_sequence=stored["sequence"],
            event_id=stored["id"],
            order_key="companies:C1",
            now=h.clock.now(),
            tag="replay",
            message_id=message_id,
        )
    await h.dispatcher.run_until_idle()
    first, *replays = webhook.ok
    (same,) = [r for r in replays if r.headers["webhook-id"] == stored["id"]]
    (fresh,) = [r for r in replays if r.headers["webhook-id"] == "replay-1234"]
    assert first.headers["webhook-id"] == stored["id"]
    assert same.body == first.body
    assert fresh.body == first.body  # the event itself is unchanged
    assert Webhook(SECRET).verify(fresh.body, fresh.headers)["id"] == stored["id"]


async def test_a_route_listed_twice_is_queued_once(
    harness: Callable[..., Harness], webhook: WebhookReceiver
) -> None:
    h = harness(crm(webhook), {"name": "all", "sinks": ["crm"]})
    (stored,) = h.commit(arr_change("C1", 100.0, 80.0))
    ids = h.dispatcher.outbox.queue(
        event_sequence=stored["sequence"],
        event_id=stored["id"],
        order_key="companies:C1",
        routes=[("all", "crm"), ("all", "crm")],
        now=h.clock.now(),
        tag="replay",
    )
    assert len(ids) == 1


# -- delete_held to Slack ----------------------------------------------------------------


async def test_a_mass_delete_hold_reaches_slack_through_a_rule(
    harness: Callable[..., Harness], slack: SlackReceiver
) -> None:
    h = harness(
        {"ops-slack": {"type": "slack", "url_env": "SLACK_URL"}},
        {"name": "held", "on": ["delete_held"], "sinks": ["ops-slack"]},
        environ={"SLACK_URL": slack.url()},
    )
    held = delete_held_event(
        event_id="evt-held",
        time=h.clock.now(),
        host="acme.gainsightcloud.com",
        source_name="companies",
        object_name="Company",
        poll_id="p1",
        poll_mode="full",
        held=120,
        total=500,
        max_delete_fraction=0.2,
        sample_keys=["K1"],
    )
    h.commit(held, arr_change("C1", 100.0, 50.0))
    await h.dispatcher.run_until_idle()
    (message,) = slack.messages()
    assert "would delete 120 of 500 records" in message["text"]
    assert "watcher poll companies --full --allow-mass-delete" in json.dumps(message["blocks"])
    assert h.statuses() == {"delivered": 1}


# -- the pure decision -----------------------------------------------------------------


def _row(event: str, time: str, key: str = "companies:C1", **kw: Any) -> Any:
    from watcher.store.outbox import DeliveryRow

    fields: dict[str, Any] = {
        "id": f"d-{event}",
        "event_sequence": 1,
        "event_id": event,
        "rule": "arr-drop",
        "sink": "crm",
        "order_key": key,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": 0.0,
        "last_error": None,
        "created_at": time,
        "delivered_at": None,
        "event_time": time,
    }
    return DeliveryRow(**{**fields, **kw})


def test_judge_table() -> None:
    """Suppress only on delivered ones; wait on unconfirmed ones in the window; ignore
    the delivery's own event and events outside the window or scope."""
    from watcher.delivery.throttle import judge, needs_judging, window
    from watcher.rules.models import Throttle

    per_key = Throttle(per="key", max=1, window="1h")
    row = _row("e2", at(1))
    span = window(per_key, row, datetime.now(UTC))
    assert (span.after, span.until) == (at(0), at(1))

    def verdict(**kw: Any) -> Any:
        base: dict[str, Any] = {"delivered": set(), "sent": {}, "unconfirmed": [], "now": 0.0}
        return judge(per_key, row, span, **{**base, **kw})

    assert verdict() == ("send", None)
    assert verdict(delivered={"e1"}) == ("suppressed", None)
    assert verdict(sent={"e1": 500.0}) == ("wait", 500.0)
    assert verdict(unconfirmed=[_row("e1", at(0.5))]) == ("wait", None)
    assert verdict(unconfirmed=[_row("e2", at(1))]) == ("send", None)  # its own event
    assert verdict(unconfirmed=[_row("e1", at(0))]) == ("send", None)  # window is (after, until]
    assert verdict(unconfirmed=[_row("e1", at(0.5), key="companies:C2")]) == ("send", None)
    assert not needs_judging(per_key, _row("e3", at(1), explicit=True))
    assert not needs_judging(per_key, _row("e3", at(1), attempts=2))
    assert needs_judging(per_key, row)
