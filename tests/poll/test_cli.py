"""`watcher poll` and `watcher events` against the simulated tenant over loopback."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog

from watcher.cli import main
from watcher.sim.schema import COMPANY
from watcher.testing.sim import RunningSim, running_sim


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures structlog for its process; undo it after each test."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def sim() -> Iterator[RunningSim]:
    with running_sim(companies=40, ctas=10, goals=0, seed=7, access_key="cli-key") as sim:
        yield sim


@pytest.fixture
def config(tmp_path: Path, sim: RunningSim, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GS_TEST_KEY", "cli-key")
    path = tmp_path / "watcher.toml"
    path.write_text(
        f"""
[gainsight]
base_url = "{sim.base_url}"
access_key_env = "GS_TEST_KEY"

[store]
path = "state/watcher.db"

[rules]
paths = []

[[sources]]
name = "companies"
kind = "company"
select = ["Gsid", "Name", "Arr", "Stage", "Status", "RenewalDate", "ModifiedDate"]
ignore_fields = ["ModifiedDate"]
page_size = 15
""",
        encoding="utf-8",
    )
    return path


def test_poll_shows_a_baseline_then_exactly_the_admin_changes(
    config: Path, sim: RunningSim, capsys: pytest.CaptureFixture[str]
) -> None:
    """First poll: silent baseline. Then exactly the mutations made through the admin API."""
    assert main(["--config", str(config), "poll", "companies", "--full"]) == 0
    out = capsys.readouterr().out
    assert "companies: full poll ok (baseline)" in out
    assert "created    40" in out
    assert "no events" in out

    keys = sim.tenant.keys(COMPANY)
    reply = httpx.post(
        sim.base_url + "/__sim/mutate",
        headers=sim.headers,
        json={
            "ops": [
                {"op": "update", "object": "Company", "key": keys[3], "fields": {"Arr": 123456.0}},
                {"op": "delete", "object": "Company", "key": keys[5]},
                {"op": "create", "object": "Company"},
            ]
        },
        timeout=10,
    )
    assert reply.status_code == 200
    created_key = reply.json()["data"]["changes"][2]["key"]
    assert main(["--config", str(config), "poll", "companies"]) == 0
    out = capsys.readouterr().out
    assert "companies: full poll ok\n" in out
    assert "created    1" in out
    assert "updated    1" in out
    assert "deleted    1" in out
    assert f"updated  {keys[3]}  Arr:" in out
    assert "-> 123456" in out

    assert main(["--config", str(config), "events", "list", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["sequence"] for e in events] == [1, 2, 3]
    assert {(e["data"]["change"], e["subject"]) for e in events} == {
        ("updated", keys[3]),
        ("deleted", keys[5]),
        ("created", created_key),
    }
    assert all(e["source"].startswith("gainsight://127.0.0.1/companies") for e in events)

    assert main(["--config", str(config), "events", "list", "--type", "deleted"]) == 0
    listing = capsys.readouterr().out
    assert keys[5] in listing
    assert keys[3] not in listing

    assert main(["--config", str(config), "events", "list", "--since", "1h", "--limit", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["--config", str(config), "events", "list", "--since", "yesterday-ish"]) == 2
    assert "--since" in capsys.readouterr().err
    assert main(["events", "list", "--source", "nope", "--config", str(config)]) == 2
    assert "no source named 'nope' (configured: companies" in capsys.readouterr().err
    assert main(["events", "list", "--source", "companies", "--config", str(config)]) == 0
    assert keys[5] in capsys.readouterr().out

    assert main(["--config", str(config), "events", "show", events[0]["id"]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == events[0]
    assert main(["--config", str(config), "events", "show", "nope"]) == 1


def test_a_sweep_of_an_unchanged_tenant_says_its_pages_were_settled(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "poll", "companies", "--full"]) == 0
    assert "settled" not in capsys.readouterr().out  # the baseline compares every page
    assert main(["--config", str(config), "poll", "companies", "--full"]) == 0
    out = capsys.readouterr().out
    assert "settled    3 of 3 pages: the same reply and stored records" in out
    assert "updated    0" in out


def test_dry_run_and_unknown_source(
    config: Path, sim: RunningSim, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run stores nothing; an unknown source is a usage error (exit 2)."""
    assert main(["--config", str(config), "poll", "companies", "--dry-run"]) == 0
    assert "dry run, nothing stored" in capsys.readouterr().out
    assert main(["--config", str(config), "events", "list"]) == 0
    assert "no events" in capsys.readouterr().out
    assert main(["--config", str(config), "poll", "nope"]) == 2
    assert "unknown source 'nope'" in capsys.readouterr().err
    code = main(["--config", str(config), "poll", "companies", "--incremental",
                 "--allow-mass-delete"])  # fmt: skip
    assert code == 2


def test_events_list_without_a_store_says_what_to_do(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), "events", "list"]) == 2
    assert "no store yet" in capsys.readouterr().err


def test_summary_of_a_held_sweep_and_the_progress_line() -> None:
    """A held sweep says so and how to apply it; progress redraws one line in place."""
    import io

    from watcher.cli.poll import _Progress, print_summary
    from watcher.poll import PollResult

    result = PollResult("p1", "companies", "full", "manual", outcome="held", held=40, missing=40)
    out = io.StringIO()
    print_summary(result, out)
    text = out.getvalue()
    assert "companies: full poll held" in text
    assert "HELD       40 deletes" in text
    assert "watcher poll companies --full --allow-mass-delete" in text
    stream = io.StringIO()
    progress = _Progress(stream)
    result.pages, result.records = 3, 15_000
    progress(result)
    progress.done()
    assert stream.getvalue().startswith("\rcompanies: page 3, 15,000 records")
    assert stream.getvalue().endswith("\r\x1b[K")


def test_poll_fails_rather_than_route_nothing_when_the_rules_cannot_load(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken rules import stops `watcher poll`; it never stores events with no deliveries."""
    monkeypatch.setitem(sys.modules, "watcher.rules.match", None)  # import raises ImportError
    with pytest.raises(ImportError):
        main(["--config", str(config), "poll", "companies"])
