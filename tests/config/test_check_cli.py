"""`watcher check`: exit 0 on a good config, 2 with a clear message otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher.cli import main

SRC = "sources['companies']"  # how errors name the source: by its name

GOOD = """
[gainsight]
base_url = "https://acme.gainsightcloud.com"
access_key_env = "WATCHER_TEST_KEY"

[rules]
paths = []

[[sources]]
name = "companies"
kind = "company"
"""


def run_check(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    path = tmp_path / "watcher.toml"
    path.write_text(text)
    code = main(["--config", str(path), "check"])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_passes_on_a_valid_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHER_TEST_KEY", "value-never-printed")
    code, out, err = run_check(tmp_path, GOOD, capsys)
    assert code == 0, err
    assert "1 source(s)" in out
    assert "value-never-printed" not in out + err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD + 'selct = ["Gsid"]\n',
            SRC + ".selct: unknown key (did you mean select?)",
        ),
        (GOOD + 'full_sweep = "*/61 * * * *"\n', "cron '*/61 * * * *' is invalid"),
        (GOOD, "environment variable WATCHER_TEST_KEY is not set"),
    ],
    ids=["typo", "bad-cron", "missing-secret"],
)
def test_check_fails_with_exit_2_and_a_clear_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    expected: str,
) -> None:
    """A typo, a bad cron or a missing secret: exit 2, message on stderr, no traceback."""
    if "selct" in text or "61" in text:
        monkeypatch.setenv("WATCHER_TEST_KEY", "x-secret")
    else:
        monkeypatch.delenv("WATCHER_TEST_KEY", raising=False)
    code, _out, err = run_check(tmp_path, text, capsys)
    assert code == 2
    assert expected in err
    assert "Traceback" not in err
    assert str(tmp_path / "watcher.toml") in err or "WATCHER_TEST_KEY" in err


@pytest.mark.parametrize(
    ("sink", "env", "expected"),
    [
        (
            'type = "webhook"\nurl = "https://hooks.example.com/x"\nsecret_env = "CRM_SECRET"',
            "whsec_not*base64*value",
            "sinks.crm.secret: not a Standard Webhooks secret",
        ),
        (
            'type = "slack"\nurl_env = "CRM_SECRET"',
            "http://hooks.example.com/services/T0/B0/secrettoken",
            "sinks.crm.url (from $CRM_SECRET): sink URLs must be https://",
        ),
    ],
    ids=["webhook-secret-not-whsec", "slack-url-not-https"],
)
def test_check_rejects_sink_secrets_that_watcher_run_would_reject(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sink: str,
    env: str,
    expected: str,
) -> None:
    """`watcher check` builds the sinks as `watcher run` does: exit 2, the setting named,
    the value never printed."""
    monkeypatch.setenv("WATCHER_TEST_KEY", "x-secret")
    monkeypatch.setenv("CRM_SECRET", env)
    code, out, err = run_check(tmp_path, f"{GOOD}\n[sinks.crm]\n{sink}\n", capsys)
    assert code == 2, out
    assert expected in err
    assert env not in out + err
    assert "Traceback" not in err


def test_the_example_config_copied_to_the_project_root_checks_clean(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`cp examples/watcher.toml .` then `watcher check` from the root: its rules path
    reaches rules/; and errors name files by absolute path."""
    import shutil

    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root / "rules", tmp_path / "rules")
    shutil.copy(root / "examples" / "watcher.toml", tmp_path / "watcher.toml")
    for name, value in {
        "GAINSIGHT_ACCESS_KEY": "k",
        "WATCHER_FEED_TOKEN": "t" * 24,
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/x",
        "CRM_WEBHOOK_URL": "https://crm.example.com/hook",
        "CRM_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 0
    assert f"ok: {tmp_path / 'watcher.toml'}" in capsys.readouterr().out
    (tmp_path / "rules" / "broken.toml").write_text("[[rules]]\nname = 1\n")
    assert main(["check", "--config", "./watcher.toml"]) == 2
    assert str(tmp_path / "rules" / "broken.toml") in capsys.readouterr().err
