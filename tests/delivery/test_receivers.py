"""The shipped receivers behave like the services they stand in for."""

from __future__ import annotations

import httpx
import pytest

from watcher.clock import FakeClock
from watcher.testing.receivers import SlackReceiver, WebhookReceiver


async def test_slack_receiver_enforces_one_message_per_second_and_slack_limits(
    clock: FakeClock,
) -> None:
    async with SlackReceiver(clock=clock) as slack, httpx.AsyncClient() as http:
        ok = await http.post(slack.url(), json={"text": "hi"})
        again = await http.post(slack.url(), json={"text": "too soon"})
        other = await http.post(slack.url("T1/B1/other"), json={"text": "another URL"})
        assert (ok.status_code, ok.text) == (200, "ok")
        assert (again.status_code, again.text) == (429, "rate_limited")
        assert again.headers["retry-after"] == "1"
        assert other.status_code == 200
        clock.advance(1.0)
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}] * 51
        too_many = await http.post(slack.url(), json={"text": "t", "blocks": blocks})
        assert (too_many.status_code, too_many.text) == (400, "invalid_blocks")
        long_text = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
        too_long = await http.post(slack.url(), json={"text": "t", "blocks": long_text})
        assert too_long.text == "invalid_blocks"
        gone = await http.post(slack.fail("arch", 410, "channel_is_archived"), json={"text": "t"})
        assert (gone.status_code, gone.text) == (410, "channel_is_archived")


async def test_webhook_receiver_can_go_down_and_come_back_on_the_same_port() -> None:
    async with WebhookReceiver() as hook, httpx.AsyncClient() as http:
        assert (await http.post(hook.url, content=b"1")).status_code == 200
        await hook.stop()
        with pytest.raises(httpx.ConnectError):
            await http.post(hook.url, content=b"2")
        await hook.start()
        assert (await http.post(hook.url, content=b"3")).status_code == 200
        assert [r.body for r in hook.received] == [b"1", b"3"]
