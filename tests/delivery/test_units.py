"""Small pure pieces: Retry-After parsing, secrets, value formatting; the daemon loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from tests.delivery import handlers
from tests.delivery.conftest import Harness, arr_change, make_config
from watcher.clock import SystemClock
from watcher.delivery.base import parse_retry_after
from watcher.delivery.render import format_value, slack_messages
from watcher.delivery.signing import secret_key
from watcher.delivery.sinks import build_sinks
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
        ("1.5", 1.5),
        ("soon", None),
        ("-5", None),
        ("inf", None),
        ("nan", None),
        ("Mon, 23 Nov 2026 16:01:30", None),
        (None, None),
    ],
)
def test_retry_after_seconds_or_http_date(header: str | None, expected: float | None) -> None:
    """RFC 9110 forms only: a negative, infinite or zone-less value is no Retry-After
    (an infinite one would otherwise hold a Slack URL for ever)."""
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
        # a poll interval far beyond the wait below: only wake() can deliver in time
        loop = asyncio.ensure_future(h.dispatcher.run(stop, poll_interval=600.0))
        for _ in range(5):  # let the loop start, find nothing, and wait
            await asyncio.sleep(0)
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
    assert message["text"] == "Acme: Csm Ada → Grace"


async def test_a_slow_sink_never_delays_another_in_the_daemon_loop(
    harness: Callable[..., Harness],
) -> None:
    """A sink stuck on an attempt (held until the test lets it go) does not hold up
    deliveries to another sink; stopping lets its in-flight attempt finish."""
    handlers.gate = asyncio.Event()
    handlers.received.clear()
    async with WebhookReceiver() as receiver:
        sinks = {
            "crm": {"type": "webhook", "url": receiver.url},
            "slow": {"type": "python", "callable": "tests.delivery.handlers:gated"},
        }
        h = harness(sinks, {"name": "a", "sinks": ["slow", "crm"]})
        h.dispatcher.clock = SystemClock()
        stop = asyncio.Event()
        loop = asyncio.ensure_future(h.dispatcher.run(stop, poll_interval=600.0))
        h.commit(arr_change("C1", 1.0, 2.0, 1))
        h.dispatcher.wake()
        await receiver.wait_for(1, within=5.0)
        h.commit(arr_change("C2", 1.0, 2.0, 2))
        h.dispatcher.wake()
        await receiver.wait_for(2, within=5.0)  # while the slow sink is still held on C1
        assert handlers.received == []
        handlers.gate.set()
        stop.set()
        await asyncio.wait_for(loop, 5.0)
        statuses = h.statuses()
        assert statuses["delivered"] >= 3  # both webhooks, and C1 on the slow sink
        assert sum(statuses.values()) == 4  # nothing lost; anything not started stays pending


@pytest.mark.parametrize("kind", ["slack", "webhook"])
def test_a_sink_url_from_the_environment_must_be_https_too(kind: str) -> None:
    """spec.md: sink URLs are https except on loopback, wherever the URL comes from; the
    error names the setting, never the URL (it carries a token)."""
    config = make_config({"ops": {"type": kind, "url_env": "OPS_URL"}})
    url = "http://hooks.example.com/services/T000/B000/tokentokentoken"
    with pytest.raises(ConfigError) as err:
        build_sinks(config, http=httpx.AsyncClient(), clock=SystemClock(), environ={"OPS_URL": url})
    assert "sinks.ops.url" in str(err.value)
    assert "https://" in str(err.value)
    assert "tokentokentoken" not in str(err.value)
    assert "hooks.example.com" not in str(err.value)


def test_a_loopback_sink_url_from_the_environment_is_accepted() -> None:
    config = make_config({"ops": {"type": "slack", "url_env": "OPS_URL"}})
    environ = {"OPS_URL": "http://127.0.0.1:9/hook"}
    sinks = build_sinks(config, http=httpx.AsyncClient(), clock=SystemClock(), environ=environ)
    assert sinks["ops"].type == "slack"


def test_webhook_headers_may_not_override_the_ones_watcher_sets() -> None:
    """A configured ``Content-Type`` or ``webhook-*`` header would go out twice (httpx
    keeps both spellings) and break receivers; it is a config error naming the setting."""
    config = make_config(
        {
            "crm": {
                "type": "webhook",
                "url": "https://hooks.example.com/x",
                "headers": {"Content-Type": "application/json", "X-Team": "cs"},
            }
        }
    )
    with pytest.raises(ConfigError, match=r"sinks\.crm\.headers: 'Content-Type' is set by"):
        build_sinks(config, http=httpx.AsyncClient(), clock=SystemClock())
