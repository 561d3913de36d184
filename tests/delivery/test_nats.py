"""The nats sink against a real ``nats-server -js`` on loopback, read back by an
independent JetStream consumer (nats-py): subjects, headers, body, once per id, in
order per record, and across a server restart mid-run."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.js.api import StorageType

from tests.delivery.conftest import Harness, arr_change, make_rules
from tests.delivery.nats_server import NatsServer, Received, read_stream, stream_config
from watcher.clock import SystemClock
from watcher.config import parse_config
from watcher.delivery.base import Item
from watcher.delivery.sinks import build_sinks, check_sinks
from watcher.delivery.sinks.nats import NatsSink, subject_for
from watcher.errors import (
    ConfigError,
    PermanentDispatchError,
    RetryableDispatchError,
    SecretError,
)

TOKEN = "nats-token-0123456789-secret"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    srv = NatsServer(tmp_path / "js").start()
    yield srv
    srv.stop()


def nats_sink(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "nats",
        "url": url,
        "retry_schedule": ["0s", *["0.2s"] * 100],
        "timeout_s": 2,
        **extra,
    }


async def until(cond: Callable[[], bool], within: float = 60.0) -> None:
    """Wait for another task's progress (the dispatcher writes the store)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not cond():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def per_key(messages: list[Received]) -> dict[str, list[int]]:
    """Per record: the order (n in ``evt-<key>-<n>``) the stream holds its events in."""
    out: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        event = json.loads(m.body)
        out[event["subject"]].append(int(event["id"].rsplit("-", 1)[1]))
    return out


async def test_events_reach_the_stream_with_subject_headers_and_body(
    tmp_path: Path, server: NatsServer
) -> None:
    """Each event is its CloudEvent JSON on <subject>.<source>.<change>, Nats-Msg-Id = id;
    the stream was created with subjects <subject>.> and file storage."""
    async with httpx.AsyncClient() as http:
        h = Harness(
            tmp_path,
            SystemClock(),  # type: ignore[arg-type]  # acks need real time; h.clock never advances here
            http,
            {"js": nats_sink(server.url)},
            make_rules({"name": "all", "sinks": ["js"]}),
        )
        committed = h.commit(arr_change("C1", 100, 90, 1), arr_change("C2", 5, 4, 1))
        stats = await h.dispatcher.run_until_idle(settle=True)
        await h.dispatcher.aclose()
        h.db.conn.close()
    assert stats.delivered == 2
    got = await read_stream(server.url, "GAINSIGHT")
    assert [m.subject for m in got] == ["gainsight.companies.updated"] * 2
    by_id = {m.headers["Nats-Msg-Id"]: m for m in got}
    for event in committed:
        msg = by_id[event["id"]]
        assert msg.headers["Content-Type"] == "application/cloudevents+json"
        assert json.loads(msg.body) == event
    config = await stream_config(server.url, "GAINSIGHT")
    assert config.subjects == ["gainsight.>"]
    assert config.storage == StorageType.FILE


async def test_a_repeat_of_the_same_event_is_stored_once(server: NatsServer) -> None:
    """A redelivery (same event id, e.g. after a crash before the store noted the ack)
    is dropped by JetStream's duplicate window: consumers see the event once."""
    sink = NatsSink("js", url=server.url, subject="gs", stream="GS")
    body = json.dumps(arr_change("C1", 1, 2, 7))
    item = Item.from_body("d1", "all", body)
    await sink.send([item])
    await sink.send([item])
    await sink.aclose()
    got = await read_stream(server.url, "GS")
    assert len(got) == 1
    assert got[0].subject == "gs.companies.updated"


async def test_order_per_record_and_once_per_id_across_a_server_restart(
    tmp_path: Path,
) -> None:
    """The server is stopped mid-run and started again (same JetStream files): every
    event arrives exactly once per id, in commit order per record."""
    server = NatsServer(tmp_path / "js").start()
    try:
        async with httpx.AsyncClient() as http:
            h = Harness(
                tmp_path,
                SystemClock(),  # type: ignore[arg-type]  # acks need real time; h.clock never advances here
                http,
                {"js": nats_sink(server.url, concurrency=8)},
                make_rules({"name": "all", "sinks": ["js"]}),
            )
            keys = [f"K{k}" for k in range(10)]
            events = [arr_change(keys[n % 10], n, n + 1, n) for n in range(400)]
            for start in range(0, len(events), 50):
                h.commit(*events[start : start + 50])
            stop = asyncio.Event()
            runner = asyncio.create_task(h.dispatcher.run(stop, poll_interval=0.1))
            await until(lambda: h.statuses().get("delivered", 0) >= 60)
            server.stop()  # mid-run: publishes fail, deliveries wait for a retry
            assert h.statuses().get("pending", 0) > 0
            await asyncio.sleep(0.5)
            server.start()
            await until(lambda: h.statuses().get("pending", 0) == 0 or runner.done())
            assert not runner.done()
            stop.set()
            await runner
            await h.dispatcher.aclose()
            assert h.statuses() == {"delivered": 400}
            h.db.conn.close()
        got = await read_stream(server.url, "GAINSIGHT")
    finally:
        server.stop()
    ids = [m.headers["Nats-Msg-Id"] for m in got]
    assert sorted(ids) == sorted(e["id"] for e in events)  # all, once each
    for key, order in per_key(got).items():
        assert order == sorted(order), f"{key} out of order: {order}"


async def test_create_stream_false_waits_for_the_stream(server: NatsServer) -> None:
    """Without the stream and with create_stream = false the attempt is retried, saying
    what to do; once an admin creates it, the same delivery goes through."""
    sink = NatsSink("js", url=server.url, subject="gs", stream="GS", create_stream=False)
    item = Item.from_body("d1", "all", json.dumps(arr_change("C1", 1, 2, 1)))
    with pytest.raises(RetryableDispatchError, match="create_stream = false"):
        await sink.send([item])
    nc = await nats.connect(server.url)
    await nc.jetstream().add_stream(name="GS", subjects=["gs.>"])
    await nc.close()
    await sink.send([item])
    await sink.aclose()
    assert len(await read_stream(server.url, "GS")) == 1


async def test_an_event_over_max_payload_is_dead_with_what_to_do(tmp_path: Path) -> None:
    """Retrying cannot make an event fit: dead at once, saying which server setting."""
    server = NatsServer(tmp_path / "js", config="max_payload: 1024\n").start()
    try:
        sink = NatsSink("js", url=server.url, subject="gs", stream="GS")
        big = arr_change("C1", 1, 2, 1)
        big["data"]["after"]["Notes"] = "x" * 4000
        with pytest.raises(PermanentDispatchError, match="max_payload"):
            await sink.send([Item.from_body("d1", "all", json.dumps(big))])
        await sink.send([Item.from_body("d2", "all", json.dumps(arr_change("C1", 1, 2, 2)))])
        await sink.aclose()
    finally:
        server.stop()


async def test_a_stream_deleted_under_the_sink_is_created_again(server: NatsServer) -> None:
    """The attempt after the stream vanished fails retryably; the next one recreates it."""
    sink = NatsSink("js", url=server.url, subject="gs", stream="GS")
    await sink.send([Item.from_body("d1", "all", json.dumps(arr_change("C1", 1, 2, 1)))])
    nc = await nats.connect(server.url)
    await nc.jetstream().delete_stream("GS")
    await nc.close()
    item = Item.from_body("d2", "all", json.dumps(arr_change("C1", 2, 3, 2)))
    with pytest.raises(RetryableDispatchError, match="no stream takes subject"):
        await sink.send([item])
    await sink.send([item])
    await sink.aclose()
    assert [m.headers["Nats-Msg-Id"] for m in await read_stream(server.url, "GS")] == ["evt-C1-2"]


async def test_no_server_is_a_retryable_failure(tmp_path: Path) -> None:
    """Nothing listening: the attempt fails retryably, naming the sink, never the URL's
    secrets (there are none in it: tokens are given separately)."""
    from tests.delivery.nats_server import free_port

    sink = NatsSink("js", url=f"nats://127.0.0.1:{free_port()}", subject="gs", stream="GS")
    item = Item.from_body("d1", "all", json.dumps(arr_change("C1", 1, 2, 1)))
    with pytest.raises(RetryableDispatchError, match="nats sink 'js': cannot connect"):
        await sink.send([item])
    await sink.aclose()


async def test_token_from_env_authenticates_and_a_wrong_one_is_not_printed(
    tmp_path: Path,
) -> None:
    """token_env is sent to a server that requires it; a wrong token fails retryably and
    the error does not contain it."""
    server = NatsServer(tmp_path / "js", token=TOKEN).start()
    try:
        config = parse_config(
            {
                "gainsight": {"base_url": "https://a.gainsightcloud.com", "access_key_env": "K"},
                "sinks": {"js": {"type": "nats", "url": server.url, "token_env": "NATS_TOKEN"}},
            }
        )
        item = Item.from_body("d1", "all", json.dumps(arr_change("C1", 1, 2, 1)))
        async with httpx.AsyncClient() as http:
            good = build_sinks(
                config, http=http, clock=SystemClock(), environ={"NATS_TOKEN": TOKEN}
            )["js"]
            await good.send([item])
            await good.aclose()
            wrong = "wrong-token-abcdefghijklmnop"
            bad = build_sinks(
                config, http=http, clock=SystemClock(), environ={"NATS_TOKEN": wrong}
            )["js"]
            with pytest.raises(RetryableDispatchError) as caught:
                await bad.send([item])
            await bad.aclose()
        assert "refused the credentials" in str(caught.value)
        assert wrong not in str(caught.value)
        assert TOKEN not in str(caught.value)
        assert len(await read_stream(server.url, "GAINSIGHT", token=TOKEN)) == 1
    finally:
        server.stop()


BASE = {"gainsight": {"base_url": "https://a.gainsightcloud.com", "access_key_env": "K"}}


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        ({"url": "nats://nats.example.com:4222"}, "plain nats:// is allowed only on loopback"),
        ({"url": "https://nats.example.com"}, "must be tls://HOST:PORT"),
        ({"url": "tls://user:pw@nats.example.com:4222"}, "without credentials"),
        ({"token_env": "A", "creds_file": "x.creds"}, "either a token"),
        ({"token_env": "A", "token_file": "t"}, "either token_env or token_file"),
        ({"ca_file": "ca.pem"}, "ca_file is only for tls://"),
        ({"subject": "gs.*"}, "sinks.js.subject"),
        ({"stream": "GS.X"}, "sinks.js.stream"),
        ({"strem": "GS"}, "sinks.js.strem: unknown key"),
    ],
)
def test_bad_nats_settings_are_config_errors(sink: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("*", r"\*")):
        parse_config({**BASE, "sinks": {"js": {"type": "nats", **sink}}})


def test_tls_url_anywhere_and_nats_on_loopback_are_accepted() -> None:
    for url in ("tls://nats.example.com:4222", "nats://localhost:4222", "nats://127.0.0.1:1"):
        parse_config({**BASE, "sinks": {"js": {"type": "nats", "url": url}}})


def test_check_names_an_unreadable_creds_file_and_an_unset_token(tmp_path: Path) -> None:
    """watcher check refuses what the sink could not use, naming the setting."""
    creds = {"type": "nats", "url": "tls://nats.example.com:4222", "creds_file": "none.creds"}
    config = parse_config({**BASE, "sinks": {"js": creds}})
    with pytest.raises(SecretError, match=r"sinks\.js\.creds_file: cannot read file"):
        check_sinks(config, base_dir=tmp_path, environ={})
    token = {"type": "nats", "token_env": "NATS_TOKEN"}
    config = parse_config({**BASE, "sinks": {"js": token}})
    with pytest.raises(SecretError, match=r"sinks\.js\.token: environment variable NATS_TOKEN"):
        check_sinks(config, base_dir=tmp_path, environ={})
    assert [r.setting for r in config.secret_refs()][-1] == "sinks.js.token"


@pytest.mark.parametrize(
    ("source", "change", "subject"),
    [
        ("companies", "created", "gs.companies.created"),
        ("ctas", "deleted", "gs.ctas.deleted"),
        ("eu.accounts", "updated", "gs.eu_accounts.updated"),
    ],
)
def test_subject_is_prefix_source_change(source: str, change: str, subject: str) -> None:
    from tests.rules.events import event

    assert subject_for("gs", event(change, source=source)) == subject


def test_preview_shows_subject_and_headers() -> None:
    sink = NatsSink("js", url="nats://127.0.0.1:4222", subject="gs", stream="GS")
    item = Item.from_body("d1", "all", json.dumps(arr_change("C1", 1, 2, 3)))
    (payload,) = sink.preview([item]).payloads
    assert payload["subject"] == "gs.companies.updated"
    assert payload["headers"] == {
        "Nats-Msg-Id": "evt-C1-3",
        "Content-Type": "application/cloudevents+json",
    }
