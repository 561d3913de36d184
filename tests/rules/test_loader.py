"""Rule files: the shipped examples load; every mistake is named with file, rule and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from watcher.config import WatcherConfig, parse_config
from watcher.errors import ConfigError
from watcher.rules.loader import load_rules

ROOT = Path(__file__).resolve().parents[2]


def config(**extra: Any) -> WatcherConfig:
    data: dict[str, Any] = {
        "gainsight": {"base_url": "https://acme.gainsightcloud.com", "access_key_env": "K"},
        "sources": [
            {"name": "companies", "kind": "company"},
            {"name": "ctas", "kind": "cta"},
            {"name": "goals", "kind": "goal"},
        ],
        "sinks": {
            "ops-slack": {"type": "slack", "url_env": "SLACK_URL"},
            "crm": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
        },
    }
    data.update(extra)
    return parse_config(data)


def write(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_shipped_example_rules_load_against_the_documented_config() -> None:
    ruleset = load_rules(config(), base_dir=ROOT)
    assert set(ruleset.names()) >= {
        "arr-drop",
        "risk-cta-created",
        "cta-closed",
        "goal-status-changed",
        "goal-overdue",
        "csm-changed",
        "renewal-date-moved",
        "company-deleted",
    }
    arr = ruleset.get("arr-drop")
    assert arr is not None
    assert arr.when[0].decreased_by_pct == 10
    assert ruleset.origins["arr-drop"].endswith("companies.toml")


def test_unknown_sink_names_file_rule_key_and_fix(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.toml",
        '[[rules]]\nname = "x"\nsources = ["companies"]\nsinks = ["crm", "pager"]\n',
    )
    with pytest.raises(ConfigError) as err:
        load_rules(config(), base_dir=tmp_path)
    message = str(err.value)
    assert str(path) in message
    assert "rules[0] ('x'): sinks[1]: no sink named 'pager'" in message
    assert "add [sinks.pager]" in message


def test_unknown_source_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", '[[rules]]\nname = "x"\nsources = ["people"]\nsinks = ["crm"]\n')
    with pytest.raises(ConfigError, match=r"sources\[0\]: no source named 'people'"):
        load_rules(config(), base_dir=tmp_path)


def test_misspelt_operator_points_at_the_key_path(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.toml",
        '[[rules]]\nname = "arr"\nsources = ["companies"]\nsinks = ["crm"]\n'
        'when = [{ field = "Arr", decreased_by_pc = 10 }]\n',
    )
    with pytest.raises(ConfigError) as err:
        load_rules(config(), base_dir=tmp_path)
    assert "rules[0] ('arr'): when[0].decreased_by_pc: unknown key" in str(err.value)


def test_condition_without_operator_says_which_to_use(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.toml",
        '[[rules]]\nname = "arr"\nsources = ["companies"]\nsinks = ["crm"]\n'
        'when = [{ field = "Arr" }]\n',
    )
    with pytest.raises(ConfigError, match=r"when\[0\].*has no operator; use one of changed"):
        load_rules(config(), base_dir=tmp_path)


def test_duplicate_rule_names_across_files_are_an_error(tmp_path: Path) -> None:
    text = '[[rules]]\nname = "dup"\nsources = ["companies"]\nsinks = ["crm"]\n'
    write(tmp_path, "a.toml", text)
    write(tmp_path, "b.toml", text)
    with pytest.raises(ConfigError, match=r"b\.toml: rules\[0\] \('dup'\): name: already used in"):
        load_rules(config(), base_dir=tmp_path)


def test_invalid_toml_and_bad_durations_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", "[[rules]\nname=")
    write(
        tmp_path,
        "b.toml",
        '[[rules]]\nname = "t"\nsources = ["companies"]\nsinks = ["crm"]\n'
        'throttle = { max = 1, window = "soon" }\n',
    )
    with pytest.raises(ConfigError) as err:
        load_rules(config(), base_dir=tmp_path)
    lines = str(err.value).splitlines()
    assert any("a.toml: invalid TOML" in line for line in lines)
    assert any("rules[0] ('t'): throttle.window: duration 'soon'" in line for line in lines)


def test_field_not_selected_by_the_source_is_an_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.toml",
        '[[rules]]\nname = "arr"\nsources = ["companies"]\nsinks = ["crm"]\n'
        'when = [{ field = "Arrr", gt = 1 }]\n',
    )
    cfg = config(sources=[{"name": "companies", "kind": "company", "select": ["Gsid", "Arr"]}])
    with pytest.raises(ConfigError, match="field 'Arrr' is not selected by source 'companies'"):
        load_rules(cfg, base_dir=tmp_path)


def test_missing_configured_rules_path_is_an_error_default_is_not(tmp_path: Path) -> None:
    assert len(load_rules(config(), base_dir=tmp_path)) == 0
    with pytest.raises(ConfigError, match="'nowhere' does not exist"):
        load_rules(config(rules={"paths": ["nowhere"]}), base_dir=tmp_path)


def test_group_conditions_reject_mixed_shapes(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.toml",
        '[[rules]]\nname = "g"\nsources = ["companies"]\nsinks = ["crm"]\n'
        'when = [{ field = "Arr", gt = 1, any = [{ field = "Arr", lt = 5 }] }]\n',
    )
    with pytest.raises(ConfigError, match="a group condition has exactly one of any/all/not"):
        load_rules(config(), base_dir=tmp_path)


def test_digest_shorthand_and_toml_dates(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.toml",
        '[[rules]]\nname = "d"\nsources = ["companies"]\nsinks = ["crm"]\ndigest = "15m"\n'
        'when = [{ field = "RenewalDate", lt = 2027-01-01 }]\n',
    )
    (rule,) = load_rules(config(), base_dir=tmp_path)
    assert rule.digest is not None
    assert rule.digest.window_seconds == 900
    assert rule.when[0].lt == "2027-01-01T00:00:00.000Z"


def test_sink_settings_used_only_when_delivering_are_checked_at_load(tmp_path: Path) -> None:
    cfg = config(
        sinks={
            "ops-slack": {"type": "slack", "url_env": "U", "link_template": "https://x/{gsid}"},
            "crm": {"type": "python", "callable": "no_such_module:handle"},
        }
    )
    with pytest.raises(ConfigError) as err:
        load_rules(cfg, base_dir=tmp_path)
    lines = str(err.value).splitlines()
    assert any("sinks.ops-slack.link_template: " in line and "'gsid'" in line for line in lines)
    assert any(
        "sinks.crm.callable: cannot import module 'no_such_module'" in line for line in lines
    )
