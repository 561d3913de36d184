"""What ``watcher poll`` shows on a terminal while the client retries."""

from __future__ import annotations

import io

from watcher.cli.poll import _Progress
from watcher.clock import FakeClock

from .helpers import envelope, json_response, mock_client, source
from .test_client_errors import sequence


async def test_each_retry_is_announced_with_its_number_and_reason() -> None:
    notes: list[str] = []
    handler, _ = sequence(
        json_response(500, envelope(None, result=False, errorCode="GU_1101")),
        json_response(503, envelope(None, result=False)),
        json_response(200, envelope([{"Gsid": "1P02A", "Name": "a"}])),
    )
    async with mock_client(handler, clock=FakeClock(), max_retries=5) as client:
        client.on_retry = notes.append
        page = await anext(client.iter_pages(source()))
    assert page.records
    assert len(notes) == 2
    assert notes[0].startswith("retrying (2/6) in ")
    assert notes[0].endswith(": HTTP 500...")
    assert notes[1].startswith("retrying (3/6) in ")


def test_the_terminal_line_is_redrawn_in_place_and_cleared() -> None:
    out = io.StringIO()
    progress = _Progress(out)
    progress.note("retrying (2/6) in 1s: HTTP 500...")
    progress.done()
    assert out.getvalue() == "\r\033[Kretrying (2/6) in 1s: HTTP 500...\r\033[K"
