"""The status page in a real browser: headless Chromium loads ``GET /`` from a running
daemon (the simulated tenant, one healthy and one failing source, a paused sink) and
the test reads what a person sees. A screenshot is kept as a test artifact."""

from __future__ import annotations

import asyncio
import re
import time
from html import unescape
from pathlib import Path

import httpx
import pytest

from tests.tools import require_program
from watcher.clock import SystemClock
from watcher.config import load_config
from watcher.daemon.metrics import Metrics
from watcher.daemon.runner import Daemon
from watcher.daemon.wiring import real_builder
from watcher.store.db import migrate, open_database
from watcher.store.outbox import Outbox
from watcher.testing.receivers import WebhookReceiver
from watcher.testing.sim import running_sim

pytestmark = pytest.mark.slow

KEY = "status-page-test-key"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

CONFIG = """
[gainsight]
base_url = "{base_url}"
access_key_env = "STATUS_TEST_KEY"

[store]
path = "watcher.db"

[http]
listen = "127.0.0.1:0"

[rules]
paths = ["rules"]

[[sources]]
name = "companies"
kind = "company"
select = ["Gsid", "Name", "Arr", "Stage", "ModifiedDate"]
baseline = "emit"

[[sources]]
name = "relationships"
kind = "object"
object = "NoSuchObject__c"

[sinks.crm]
type = "webhook"
url = "{hook}"

[sinks.archive]
type = "webhook"
url = "{hook}"
"""

RULES = """
[[rules]]
name = "everything"
sources = ["companies"]
on = ["created", "updated", "deleted"]
sinks = ["crm", "archive"]
"""


def chromium() -> str:
    return require_program(
        "chromium", "chromium-browser", install="Debian: apt-get install chromium"
    )


async def browse(binary: str, url: str, *extra: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--headless",
        "--no-sandbox",  # tests run as root in CI
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        *extra,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0
    return out.decode()


def visible_text(dom: str) -> str:
    """The text a reader sees: no tags, no <style>/<title>, whitespace folded."""
    body = dom.split("<body", 1)[1]
    body = re.sub(r"<style.*?</style>|<title>.*?</title>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body)))


def row(dom: str, attr: str, name: str) -> str:
    match = re.search(rf'<tr[^>]*data-{attr}="{name}".*?</tr>', dom, flags=re.S)
    assert match, f"no {attr} row for {name}"
    return visible_text("<body>" + match.group(0))


async def test_the_page_shows_sources_a_paused_sink_and_a_failed_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = chromium()
    monkeypatch.setenv("STATUS_TEST_KEY", KEY)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "all.toml").write_text(RULES)
    db = open_database(tmp_path / "watcher.db")
    migrate(db, SystemClock().now)
    Outbox(db).pause("sink", "archive", reason="receiver moving", now=SystemClock().now())
    db.conn.close()
    with running_sim(companies=30, ctas=0, goals=0, access_key=KEY) as sim:
        async with WebhookReceiver() as hook:
            path = tmp_path / "watcher.toml"
            path.write_text(CONFIG.format(base_url=sim.base_url, hook=hook.url))
            clock = SystemClock()
            daemon = Daemon(
                load_config(path),
                real_builder(clock=clock, base_dir=tmp_path, metrics=Metrics()),
                clock=clock,
                config_path=path,
            )
            run = asyncio.create_task(daemon.run())
            try:
                await asyncio.wait_for(daemon.started.wait(), 20)
                await asyncio.wait_for(daemon.wait_for_polls(2), 30)
                url = f"http://127.0.0.1:{daemon.http_port}/"
                async with httpx.AsyncClient() as http:
                    for _ in range(200):  # the webhook sink delivers the baseline's events
                        status = (await http.get(url + "v1/status")).json()
                        crm = next(s for s in status["sinks"] if s["name"] == "crm")
                        if crm["delivered_last_day"] == 30:
                            break
                        await asyncio.sleep(0.05)
                started = time.perf_counter()
                dom = await browse(binary, url, "--dump-dom")
                load_s = time.perf_counter() - started
                ARTIFACTS.mkdir(exist_ok=True)
                shot = ARTIFACTS / "status-page-phone.png"
                shot.unlink(missing_ok=True)
                await browse(binary, url, f"--screenshot={shot}", "--window-size=412,1400")
                wide = ARTIFACTS / "status-page-desktop.png"
                await browse(binary, url, f"--screenshot={wide}", "--window-size=1280,1000")
            finally:
                daemon.request_stop()
                assert await asyncio.wait_for(run, 30) == 0
    text = visible_text(dom)
    assert "daemon running" in text
    companies = row(dom, "source", "companies")
    assert "30" in companies.split()  # records stored
    assert "full" in companies
    assert "ok" in companies
    failed = row(dom, "source", "relationships")
    assert "failed" in failed
    assert "last error" in failed
    assert "NoSuchObject__c" in failed
    assert "paused" in row(dom, "sink", "archive")
    crm = row(dom, "sink", "crm")
    assert "active" in crm
    assert "30" in crm.split()
    assert "everything" in row(dom, "rule", "everything")
    assert dom.count("<svg") >= 2  # one events-per-hour chart per source
    assert "Last 20 events" in text
    calls = re.search(r"(\d+) / 50000 today", text)
    assert calls, text
    assert int(calls.group(1)) >= 2  # the daemon counted its Gainsight calls
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == 412  # the phone-sized window
    print(f"status page: headless Chromium load {load_s:.2f} s (dump-dom, incl. start-up)")
