"""The rules, deliveries, replay and pause commands on a real config and store."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import pytest

from tests.delivery.conftest import arr_change
from watcher.cli import main
from watcher.clock import FakeClock
from watcher.config import load_config
from watcher.core.events import CloudEvent
from watcher.rules.loader import load_rules
from watcher.rules.match import build_router
from watcher.store.db import open_database
from watcher.store.deliveries import delivery_id
from watcher.store.outbox import Outbox
from watcher.store.store import PageCommit, Store

CONFIG = """
[gainsight]
base_url = "https://acme.gainsightcloud.com"
access_key_env = "GS_KEY"

[store]
path = "w.db"

[[sources]]
name = "companies"
kind = "company"

[sinks.ops-slack]
type = "slack"
url_env = "SLACK_URL"
link_template = "https://acme.gainsightcloud.com/c360?cid={key}"

[sinks.crm]
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret_env = "CRM_SECRET"
"""

RULES = """
[[rules]]
name = "arr-drop"
description = "ARR fell by 10% or more"
sources = ["companies"]
on = ["updated"]
when = [{ field = "Arr", decreased_by_pct = 10 }]
sinks = ["ops-slack", "crm"]
throttle = { per = "key", max = 1, window = "1h" }
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "watcher.toml").write_text(CONFIG)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.toml").write_text(RULES)
    return tmp_path


def commit(project: Path, *events: Mapping[str, object]) -> None:
    config = load_config(project / "watcher.toml")
    router = build_router(load_rules(config, base_dir=project))
    db = open_database(project / "w.db")
    Store(db, clock=FakeClock()).commit(
        "companies", PageCommit(events=cast(list[CloudEvent], list(events))).route(router)
    )
    db.conn.close()


def run(project: Path, *argv: str) -> int:
    return main(["--config", str(project / "watcher.toml"), *argv])


def test_rules_list_shows_each_rule(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(project, "rules", "list") == 0
    out = capsys.readouterr().out
    assert "arr-drop" in out
    assert "ops-slack,crm" in out
    assert "throttle 1/key/1h" in out


def test_rules_test_event_prints_exact_payloads_without_secrets(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event_file = project / "event.json"
    event_file.write_text(json.dumps(arr_change("C1", 1000.0, 800.0)))
    # no SLACK_URL / CRM_SECRET set: rendering needs no secret
    assert run(project, "rules", "test", "--event", str(event_file)) == 0
    out = capsys.readouterr().out
    assert "rule arr-drop matches (throttle 1/key/1h: applied when delivering)" in out
    assert "-> ops-slack (slack)" in out
    assert "*Arr*: 1,000 → 800 (\u221220.0%)" in out
    assert '"webhook-id": "evt-C1-0"' in out
    assert "v1,<HMAC-SHA256 computed when sent>" in out
    assert not (project / "w.db").exists()  # no side effects


def test_rules_test_last_reads_the_store_and_changes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit(project, arr_change("C1", 1000.0, 800.0), arr_change("C2", 1000.0, 990.0, 1))
    before = (project / "w.db").read_bytes()
    assert run(project, "rules", "test", "--last", "2") == 0
    out = capsys.readouterr().out
    assert out.count("rule arr-drop matches") == 1
    assert "no rule matches" in out
    assert (project / "w.db").read_bytes() == before


def test_pause_resume_and_deliveries_list_retry(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit(project, arr_change("C1", 1000.0, 800.0))
    assert run(project, "pause", "--sink", "crm", "--reason", "maintenance") == 0
    assert run(project, "pause") == 0
    assert "sink crm: paused at" in capsys.readouterr().out
    assert run(project, "pause", "--rule", "nope") == 2
    assert "no rule named 'nope'" in capsys.readouterr().err
    assert run(project, "pause", "--rule", "arr-drop") == 0
    assert run(project, "rules", "list") == 0
    assert "PAUSED" in capsys.readouterr().out
    assert run(project, "resume", "--sink", "crm") == 0
    assert "resumed sink crm" in capsys.readouterr().out

    assert run(project, "deliveries", "list", "--status", "pending") == 0
    out = capsys.readouterr().out
    assert out.count("pending") == 2  # one per sink
    db = open_database(project / "w.db")
    outbox = Outbox(db)
    row = outbox.list_deliveries(sink="crm")[0]
    outbox.mark_dead(row.id, error="HTTP 500")
    db.conn.close()
    assert run(project, "deliveries", "list", "--status", "dead", "--sink", "crm") == 0
    assert row.id in capsys.readouterr().out
    assert run(project, "deliveries", "retry", "--dead") == 0
    assert "queued 1 dead delivery again" in capsys.readouterr().out
    assert run(project, "deliveries", "retry", "no-such-id") == 1


def test_replay_queues_past_matching_events_again(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit(project, arr_change("C1", 1000.0, 800.0), arr_change("C2", 1000.0, 990.0, 1))
    assert run(project, "replay", "--since", "2000-01-01", "--sink", "crm") == 0
    assert "queued 1 deliveries for 1 event(s)" in capsys.readouterr().out
    db = open_database(project / "w.db")
    rows = Outbox(db).list_deliveries(sink="crm")
    db.conn.close()
    assert len(rows) == 2
    assert {r.event_id for r in rows} == {"evt-C1-0"}
    assert run(project, "replay", "--since", "yesterday") == 2


def test_rules_test_says_which_condition_failed_for_a_rule_that_did_not_match(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 9: for a rule that did not match, ``rules test`` names the failing condition
    and the values it saw."""
    (project / "rules" / "b.toml").write_text(
        '[[rules]]\nname = "churn"\nsources = ["companies"]\non = ["updated"]\n'
        'sinks = ["crm"]\nwhen = [{ field = "Name", contains = "Acme" },'
        ' { any = [{ field = "Stage", to = "Will Churn" }, { field = "Arr", lt = 10 }] }]\n'
        '[[rules]]\nname = "deletes"\nsources = ["companies"]\non = ["deleted"]\n'
        'sinks = ["crm"]\n'
    )
    event_file = project / "event.json"
    event_file.write_text(json.dumps(arr_change("C1", 1000.0, 950.0)))
    assert run(project, "rules", "test", "--event", str(event_file)) == 0
    out = capsys.readouterr().out
    assert (
        "rule arr-drop does not match: when[0]: Arr decreased_by_pct = 10 does not hold "
        "(Arr: 1000.0 -> 950.0)" in out
    )
    assert (
        'rule churn does not match: when[0]: Name contains = "Acme" does not hold '
        '(Name is "Company C1", unchanged)' in out
    )
    assert 'rule deletes does not match: change "updated" is not in on ["deleted"]' in out
    assert "no rule matches" in out


def test_rules_test_treats_a_hand_written_event_like_a_real_one(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No ``data.change``, no ``changes``, no ``time``: matched as the daemon would."""
    event_file = project / "event.json"
    event_file.write_text(
        json.dumps(
            {
                "id": "hand-1",
                "type": "gainsight.company.updated",
                "data": {
                    "source": "companies",
                    "key": "C9",
                    "before": {"Arr": 1000.30},
                    "after": {"Arr": 900.27},
                },
            }
        )
    )
    assert run(project, "rules", "test", "--event", str(event_file)) == 0
    out = capsys.readouterr().out
    assert "(no time in the event: taken as now," in out
    assert "rule arr-drop matches" in out


def test_replay_keeps_webhook_ids_unless_new_ids(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit(project, arr_change("C1", 1000.0, 800.0))
    assert run(project, "replay", "--since", "2000-01-01", "--sink", "crm") == 0
    assert "with their original webhook-ids" in capsys.readouterr().out
    assert run(project, "replay", "--since", "2000-01-01", "--sink", "crm", "--new-ids") == 0
    assert "with new webhook-ids" in capsys.readouterr().out
    db = open_database(project / "w.db")
    first = {delivery_id(r.event_id, r.rule, r.sink) for r in Outbox(db).list_deliveries()}
    rows = [r for r in Outbox(db).list_deliveries(sink="crm") if r.id not in first]
    db.conn.close()
    ids = sorted(r.message_id or "" for r in rows)
    assert ids[0] == ""  # the plain replay: the event id is the webhook-id
    assert ids[1].startswith("replay-")


def test_an_explicit_retry_from_the_cli_marks_the_delivery_unthrottled(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit(project, arr_change("C1", 1000.0, 800.0))
    db = open_database(project / "w.db")
    outbox = Outbox(db)
    row = outbox.list_deliveries(sink="crm")[0]
    outbox.mark_suppressed(row.id, reason="throttled")
    assert run(project, "deliveries", "retry", row.id) == 0
    assert "sent whatever the throttle says" in capsys.readouterr().out
    again = outbox.get(row.id)
    db.conn.close()
    assert again is not None
    assert (again.status, again.explicit) == ("pending", True)
