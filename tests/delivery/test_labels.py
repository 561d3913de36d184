"""Slack shows labels, not picklist ids, whenever a label field is selected."""

from __future__ import annotations

import json

from tests.rules.events import event
from watcher.delivery.render import change_lines, slack_messages


def test_a_goal_status_shows_its_status_name_not_the_picklist_id() -> None:
    before = {"Gsid": "G1", "Name": "Adoption", "Status": "1I00AAA", "StatusName": "In Progress"}
    after = {**before, "Status": "1I00BBB", "StatusName": "Completed"}
    lines = change_lines(event("updated", source="goals", before=before, after=after))
    assert lines == ["*Status*: In Progress → Completed"]


def test_a_cta_status_id_shows_its_gr_name_label() -> None:
    before = {"Gsid": "S1", "Name": "Risk", "StatusId": "1I00A", "StatusId__gr.Name": "New"}
    after = {**before, "StatusId": "1I00B", "StatusId__gr.Name": "Closed Success"}
    text = json.dumps(
        slack_messages([(event("updated", before=before, after=after), "r")]), ensure_ascii=False
    )
    assert "New → Closed Success" in text
    assert "1I00B" not in text
