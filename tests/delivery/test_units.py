"""Small pure pieces: Retry-After parsing, secrets, value formatting; the daemon loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.delivery.conftest import Harness, arr_change
from watcher.clock import SystemClock
from watcher.delivery.base import parse_retry_after
from watcher.delivery.render import format_value, slack_messages
from watcher.delivery.signing import secret_key
from watcher.errors import ConfigError
from watcher.testing.receivers import WebhookReceiver

NOW = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("Mon, 23 Nov 2026 16:01:30 GMT", 90.0),
        ("Mon, 23 Nov 2026 15:00:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_seconds_or_http_date(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_a_secret_that_is_not_base64_is_a_config_error_without_the_value() -> None:
    with pytest.raises(ConfigError) as err:
        secret_key("whsec_not*base64*at*all", "sinks.crm.secret")
    assert "sinks.crm.secret: not a Standard Webhooks secret" in str(err.value)
    assert "not*base64" not in str(err.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "(empty)"),
        ("", "(empty)"),
        (True, "yes"),
        (1234567.0, "1,234,567"),
        (1234.5, "1,234.5"),
        ("2026-11-23T16:05:00.000Z", "23 Nov 2026 16:05 UTC"),
        ("2026-11-23T00:00:00.000Z", "23 Nov 2026"),
        (["a", "b"], "a, b"),
        ("x" * 400, "x" * 299 + "…"),
    ],
)
def test_values_read_well(value: object, text: str) -> None:
    assert format_value(value) == text


def test_slack_text_is_escaped() -> None:
    from tests.rules.events import updated

    (message,) = slack_messages([(updated("Name", "A&B", "<C>"), "r")])
    assert "A&amp;B → &lt;C&gt;" in message["blocks"][0]["text"]["text"]


async def test_daemon_loop_delivers_when_woken_and_stops_on_request(
    harness: Callable[..., Harness],
) -> None:
    async with WebhookReceiver() as receiver:
        h = harness(
            {"crm": {"type": "webhook", "url": receiver.url}}, {"name": "a", "sinks": ["crm"]}
        )
        h.dispatcher.clock = SystemClock()
        stop = asyncio.Event()
        loop = asyncio.ensure_future(h.dispatcher.run(stop, poll_interval=5.0))
        await asyncio.sleep(0.01)
        h.commit(arr_change("C1", 1.0, 2.0))
        h.dispatcher.wake()
        await receiver.wait_for(1, within=5.0)
        stop.set()
        await asyncio.wait_for(loop, 5.0)
        assert h.statuses() == {"delivered": 1}


def test_lookup_changes_show_names_when_the_record_has_them() -> None:
    from tests.rules.events import event

    ev = event(
        "updated",
        before={"Name": "Acme", "Csm": "1P01AAA", "Csm__gr.Name": "Ada"},
        after={"Name": "Acme", "Csm": "1P01BBB", "Csm__gr.Name": "Grace"},
    )
    (message,) = slack_messages([(ev, "csm-changed")])
    text = message["blocks"][0]["text"]["text"]
    assert "*Csm*: Ada → Grace" in text
    assert "__gr.Name" not in text
    assert message["text"].startswith("Acme: Csm Ada → Grace")


async def test_a_slow_sink_never_delays_another_in_the_daemon_loop(
    harness: Callable[..., Harness],
) -> None:
    async with WebhookReceiver() as receiver:
        sinks = {
            "crm": {"type": "webhook", "url": receiver.url},
            "slow": {"type": "python", "callable": "tests.delivery.handlers:slow"},
        }
        h = harness(sinks, {"name": "a", "sinks": ["slow", "crm"]})
        h.dispatcher.clock = SystemClock()
        stop = asyncio.Event()
        loop = asyncio.ensure_future(h.dispatcher.run(stop, poll_interval=5.0))
        h.commit(arr_change("C1", 1.0, 2.0, 1))
        h.dispatcher.wake()
        await receiver.wait_for(1, within=0.9)
        h.commit(arr_change("C2", 1.0, 2.0, 2))
        h.dispatcher.wake()
        await receiver.wait_for(2, within=0.9)  # while the slow sink still works on C1
        stop.set()
        await asyncio.wait_for(loop, 5.0)
        statuses = h.statuses()
        assert statuses["delivered"] >= 3  # both webhooks, and C1 on the slow sink
        assert sum(statuses.values()) == 4  # nothing lost; anything not started stays pending
