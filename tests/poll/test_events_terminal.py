"""`watcher events list` / `show` never hand Gainsight's control characters to the
terminal (issue 12): an ESC[2J in a Name would clear the operator's screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rules.events import event
from watcher.cli import main
from watcher.clock import FakeClock
from watcher.store.store import PageCommit, Store

HOSTILE = "Acme\x1b[2J\x1b]0;owned\x07 \x9b31m \u202egnp.exe\nsecond line"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    store = Store.open(tmp_path / "watcher.db", clock=FakeClock())
    try:
        ev = event("updated", before={"Name": "Acme"}, after={"Name": HOSTILE})
        ev["id"] = "evt-hostile"
        store.commit("companies", PageCommit(events=[ev]))
    finally:
        store.close()
    path = tmp_path / "watcher.toml"
    path.write_text(
        '[gainsight]\nbase_url = "https://acme.gainsightcloud.com"\naccess_key_env = "K"\n'
        '[store]\npath = "watcher.db"\n'
    )
    return path


@pytest.mark.parametrize(
    "argv",
    [["events", "list"], ["events", "list", "--json"], ["events", "show", "evt-hostile"]],
)
def test_control_characters_are_shown_escaped_never_sent_raw(
    config: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(["--config", str(config), *argv]) == 0
    out = capsys.readouterr().out
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in out
    assert "Acme" in out
    if argv[1] == "list" and "--json" not in argv:
        assert "\\x1b[2J" in out
        assert len(out.strip().splitlines()) == 1  # one line per event
