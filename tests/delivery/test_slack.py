"""Slack deliveries to a Slack-like receiver: readable, rate-limited, split, folded."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.delivery.conftest import Harness, arr_change
from tests.rules.events import event
from watcher.clock import FakeClock
from watcher.delivery.base import Item
from watcher.delivery.render import slack_messages
from watcher.delivery.sinks.slack import SlackRateLimiter, SlackSink
from watcher.errors import RetryableDispatchError
from watcher.testing.receivers import SlackReceiver

ARR_DROP = {
    "name": "arr-drop",
    "sinks": ["ops-slack"],
    "when": [{"field": "Arr", "decreased_by_pct": 10}],
}


def ops(url: str, **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    return {"ops-slack": {"type": "slack", "url_env": "SLACK_URL", **extra}}, {"SLACK_URL": url}


def all_texts(message: dict[str, Any]) -> str:
    parts = [message["text"]]
    for block in message["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        for element in block.get("elements", []):
            parts.append(element["text"])
    return "\n".join(parts)


async def test_arr_drop_reads_well_in_slack_and_non_matching_sends_nothing(
    harness: Callable[..., Harness], slack: SlackReceiver
) -> None:
    sinks, env = ops(slack.url(), link_template="https://acme.gainsightcloud.com/c360?cid={key}")
    h = harness(sinks, ARR_DROP, environ=env)
    h.commit(arr_change("C1", 100000.0, 90000.0))
    h.commit(arr_change("C2", 100000.0, 99000.0))
    await h.dispatcher.run_until_idle()
    (message,) = slack.messages()
    text = all_texts(message)
    assert "<https://acme.gainsightcloud.com/c360?cid=C1|Company C1>" in text
    assert "*Arr*: 100,000 → 90,000 (\u221210.0%)" in text
    assert "rule `arr-drop`" in text
    assert message["text"] == "Company C1: Arr 100,000 → 90,000"  # plain fallback


async def test_dates_read_as_dates() -> None:
    ev = event(
        "updated",
        before={"Name": "Acme", "RenewalDate": "2026-12-01T00:00:00.000Z"},
        after={"Name": "Acme", "RenewalDate": "2027-03-15T00:00:00.000Z"},
    )
    (message,) = slack_messages([(ev, "renewal-date-moved")])
    assert "*RenewalDate*: 1 Dec 2026 → 15 Mar 2027" in all_texts(message)


async def test_never_more_than_one_message_per_second_per_url(
    harness: Callable[..., Harness], slack: SlackReceiver
) -> None:
    sinks, env = ops(slack.url())
    h = harness(sinks, ARR_DROP, environ=env)
    for n in range(5):
        h.commit(arr_change(f"K{n}", 100.0, 50.0, n))
        await h.dispatcher.run_until_idle()  # one event at a time: five messages
    times = [r.at for r in slack.received]
    assert len(slack.messages()) == 5
    assert all(r.status == 200 for r in slack.received)  # never hit the receiver's 429
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))


async def test_a_burst_is_folded_into_one_digest_message(
    harness: Callable[..., Harness], slack: SlackReceiver
) -> None:
    sinks, env = ops(slack.url())
    h = harness(sinks, ARR_DROP, environ=env)
    h.commit(*(arr_change(f"K{n}", 100.0, 50.0, n) for n in range(12)))
    await h.dispatcher.run_until_idle()
    messages = slack.messages()
    assert len(messages) == 1
    assert messages[0]["text"].startswith("12 Gainsight changes:")
    assert h.statuses() == {"delivered": 12}


async def test_long_content_is_split_within_slack_limits(
    harness: Callable[..., Harness], slack: SlackReceiver
) -> None:
    sinks, env = ops(slack.url())
    h = harness(sinks, {"name": "all", "sinks": ["ops-slack"]}, environ=env)
    wide_before = {f"Field{i:03d}": "x" * 250 for i in range(120)}
    wide_after = {f"Field{i:03d}": "y" * 250 for i in range(120)}
    events = []
    for n in range(20):
        ev = event("updated", key=f"W{n}", before=wide_before, after=wide_after)
        ev["id"] = f"wide-{n}"
        events.append(ev)
    h.commit(*events)
    await h.dispatcher.run_until_idle(settle=True)
    assert h.statuses() == {"delivered": 20}
    messages = slack.messages()
    assert len(messages) > 1
    for message in messages:
        assert len(message["blocks"]) <= 50
        assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"] if "text" in b)
    assert not [r for r in slack.received if r.status != 200]


async def test_slack_429_retry_after_is_honoured(
    harness: Callable[..., Harness], clock: Any
) -> None:
    async with SlackReceiver(clock=clock, interval=3.0) as strict:  # stricter than 1/s
        sinks, env = ops(strict.url())
        h = harness(sinks, ARR_DROP, environ=env)
        h.commit(arr_change("A", 100.0, 50.0, 1))
        await h.dispatcher.run_until_idle()
        h.commit(arr_change("B", 100.0, 50.0, 2))
        stats = await h.dispatcher.run_until_idle(settle=True)
        assert [r.status for r in strict.received] == [200, 429, 200]
        assert stats.failed == 1
        assert h.statuses() == {"delivered": 2}
        assert strict.received[2].at - strict.received[1].at >= 2.0  # waited as told


async def test_slack_errors_are_reported_and_dead_lettered_when_retrying_cannot_help(
    harness: Callable[..., Harness], slack: SlackReceiver
) -> None:
    url = slack.fail("gone", 404, "channel_not_found")
    sinks, env = ops(url)
    h = harness(sinks, ARR_DROP, environ=env)
    h.commit(arr_change("C1", 100.0, 50.0))
    stats = await h.dispatcher.run_until_idle()
    assert stats.dead == 1
    (row,) = h.dispatcher.outbox.list_deliveries(status="dead")
    assert "Slack rejected the message: channel_not_found" in (row.last_error or "")
    assert "create a new incoming webhook" in (row.last_error or "")
    assert url not in (row.last_error or "")


async def test_digest_rule_sends_one_message_when_its_window_closes(
    harness: Callable[..., Harness], slack: SlackReceiver
) -> None:
    sinks, env = ops(slack.url())
    h = harness(sinks, {**ARR_DROP, "digest": "10m"}, environ=env)
    h.commit(arr_change("A", 100.0, 50.0, 1))
    await h.dispatcher.run_until_idle()
    h.clock.advance(120)
    h.commit(arr_change("B", 100.0, 50.0, 2))
    await h.dispatcher.run_until_idle()
    assert slack.received == []  # window still open
    stats = await h.dispatcher.run_until_idle(settle=True)
    assert stats.delivered == 2
    (message,) = slack.messages()
    assert message["text"].startswith("2 Gainsight changes")


async def test_parallel_slack_batches_never_split_a_key_across_concurrent_sends(
    harness: Callable[..., Harness], slack: SlackReceiver
) -> None:
    """Concurrency 4 on a Slack sink: per key, events still appear in event order."""
    sinks, env = ops(slack.url(), concurrency=4)
    h = harness(sinks, {"name": "all", "sinks": ["ops-slack"]}, environ=env)
    h.commit(*(arr_change(f"K{n % 3}", float(n), float(n + 1000), n) for n in range(70)))
    await h.dispatcher.run_until_idle(settle=True)
    assert h.statuses() == {"delivered": 70}
    seen: dict[str, list[int]] = {}
    for message in slack.messages():
        for block in message["blocks"]:
            text = block.get("text", {}).get("text", "")
            for key, old in re.findall(r"\*Company (K\d)\* .*?\n\*Arr\*: ([\d,]+) →", text):
                seen.setdefault(key, []).append(int(old.replace(",", "")))
    assert sum(len(v) for v in seen.values()) == 70
    assert all(v == sorted(v) for v in seen.values())


async def test_a_huge_slack_retry_after_holds_the_url_no_longer_than_the_retry_waits() -> None:
    """The dispatcher retries at most a day later whatever Retry-After says; the URL's
    rate limiter must not hold the next message longer than that."""
    clock = FakeClock()
    answers = iter(
        [
            httpx.Response(429, text="rate_limited", headers={"Retry-After": "10000000"}),
            httpx.Response(200, text="ok"),
        ]
    )
    transport = httpx.MockTransport(lambda _request: next(answers))
    async with httpx.AsyncClient(transport=transport) as http:
        sink = SlackSink(
            "ops",
            url="https://hooks.slack.com/services/T/B/x",
            http=http,
            clock=clock,
            limiter=SlackRateLimiter(clock),
        )
        item = Item.from_body("d1", "arr-drop", json.dumps(arr_change("A", 100.0, 50.0)))
        with pytest.raises(RetryableDispatchError):
            await sink.send([item])
        start = clock.monotonic()
        await sink.send([item])
    assert clock.monotonic() - start <= 24 * 3600


HOSTILE = "Acme <!channel> see <http://evil.example/login|verify now> & co"


@pytest.mark.parametrize("change", ["updated", "created", "deleted"])
async def test_gainsight_text_cannot_mention_a_channel_or_plant_a_link(change: str) -> None:
    """A Name (or any value) with Slack markup is escaped everywhere Slack renders
    text, the top-level fallback included, and a link's template values are
    percent-encoded so a key cannot end or redirect the link."""
    key = "C1|x><!here>"
    ev = event(
        change,
        key=key,
        before={"Name": HOSTILE, "Stage": "<!everyone>"},
        after={"Name": HOSTILE, "Stage": "<@U123>"},
    )
    pairs = [(ev, "arr-drop"), (event("updated", key="C2", before={"Name": HOSTILE}), "r")]
    for batch in (pairs[:1], pairs):
        for message in slack_messages(batch, "https://acme.gainsightcloud.com/c360?cid={key}"):
            text = all_texts(message)
            assert "<!" not in text
            assert "<http://evil" not in text
            assert "<@" not in text
            assert "&lt;!channel&gt;" in message["text"]
            links = re.findall(r"<([^>]*)>", text)
            base = "https://acme.gainsightcloud.com/c360?cid="
            assert all(link.startswith(base) for link in links)
    (single,) = slack_messages(pairs[:1], "https://acme.gainsightcloud.com/c360?cid={key}")
    assert "cid=C1%7Cx%3E%3C%21here%3E|Acme &lt;!channel&gt;" in all_texts(single)
