"""Rule files: the shipped examples load; every mistake is named with file, rule and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from watcher.config import WatcherConfig, parse_config
from watcher.delivery.sinks import load_checked_rules
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
        load_checked_rules(cfg, base_dir=tmp_path)
    lines = str(err.value).splitlines()
    assert any("sinks.ops-slack.link_template: " in line and "'gsid'" in line for line in lines)
    assert any(
        "sinks.crm.callable: cannot import module 'no_such_module'" in line for line in lines
    )


def _errors(tmp_path: Path, text: str, cfg: WatcherConfig | None = None) -> list[str]:
    path = write(tmp_path, "a.toml", text)
    with pytest.raises(ConfigError) as err:
        load_rules(cfg or config(), base_dir=tmp_path)
    lines = str(err.value).splitlines()
    assert all(line.startswith(str(path)) for line in lines), lines
    return [line[len(str(path)) + 2 :] for line in lines]


HEAD = '[[rules]]\nname = "r"\nsources = ["companies"]\nsinks = ["crm"]\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'name = "r"\nsources = ["companies"]\nsinks = ["crm", "crm"]\n',
            "rules[0] ('r'): sinks: 'crm' is listed twice; list each sink once",
        ),
        (
            'name = "r"\nsources = ["companies"]\nsinks = ["crm"]\non = ["updated", "updated"]\n',
            "rules[0] ('r'): on: 'updated' is listed twice; list each change once",
        ),
        (
            'name = "r"\nsources = ["companies", "companies"]\nsinks = ["crm"]\n',
            "rules[0] ('r'): sources: 'companies' is listed twice; list each source once",
        ),
        (
            'name = "r"\nsources = ["companies"]\nsinks = ["crm"]\n'
            'when = [{ field = "Stage", in = ["A", "B", "A"] }]\n',
            "rules[0] ('r'): when[0].in: 'A' is listed twice; list each value once",
        ),
        (
            'name = "r"\nsources = ["companies"]\nsinks = ["crm"]\n'
            'when = [{ field = "D", not_in = [2027-01-01, "2027-01-01"] }]\n',
            "rules[0] ('r'): when[0].not_in: '2027-01-01' is listed twice; list each value once",
        ),
    ],
)
def test_duplicates_in_a_rule_are_rejected(tmp_path: Path, text: str, expected: str) -> None:
    """``sinks = ["hook", "hook"]`` loaded, and replay then sent each event twice."""
    assert _errors(tmp_path, "[[rules]]\n" + text) == [expected]


NEVER = [
    # (condition or rule lines, expected error)
    ('when = [{ field = "Stage", in = [] }]', "when[0].in: in = [] holds for no value"),
    ('when = [{ field = "Stage", from = [] }]', "when[0].from: from = [] names no value"),
    ('when = [{ field = "Stage", not_in = [] }]', "when[0].not_in: not_in = [] excludes"),
    (
        'when = [{ field = "Arr", gt = "40000" }]',
        "when[0].gt: '40000' is text, and text never orders like a number",
    ),
    (
        'when = [{ field = "Arr", crosses_below = "50000" }]',
        "when[0].crosses_below: '50000' is not a number; crosses_below takes a number",
    ),
    (
        'when = [{ field = "Arr", crosses_below = nan }]',
        "when[0].crosses_below: nan equals and orders with nothing",
    ),
    ('when = [{ field = "Arr", gte = inf }]', "when[0].gte: inf equals and orders with nothing"),
    (
        'on = ["updated"]\nwhen = [{ field = "ModifiedDate", changed = true }]',
        "when[0]: ModifiedDate changed = true can never hold: 'ModifiedDate' is in "
        "ignore_fields of source 'companies'",
    ),
    (
        'on = ["updated"]\nwhen = [{ field = "ModifiedDate", crosses_below = 5 }]',
        "when[0]: ModifiedDate crosses_below = 5 can never hold: 'ModifiedDate' is in "
        "ignore_fields",
    ),
    (
        'on = ["created"]\nwhen = [{ field = "Arr", crosses_below = 5 }]',
        "when[0]: Arr crosses_below = 5 can never hold: a created event has no old value",
    ),
    (
        'on = ["created"]\nwhen = [{ field = "Stage", from = "Launched" }]',
        'when[0]: Stage from = "Launched" can never hold: a created event has no old value',
    ),
    (
        'on = ["deleted"]\nwhen = [{ field = "Stage", to = "Churned" }]',
        'when[0]: Stage to = "Churned" can never hold: a deleted event has no new value',
    ),
    (
        'on = ["created"]\nwhen = [{ any = [{ field = "Arr", decreased_by_pct = 5 },'
        ' { field = "Arr", crosses_above = 9 }] }]',
        "when[0]: Arr decreased_by_pct = 5 can never hold: a created event has no old value",
    ),
    (
        'on = ["delete_held"]\nwhen = [{ field = "held", changed = true }]',
        "when[0]: held changed = true can never hold: nothing changes in a delete_held event",
    ),
    (
        'on = ["delete_held"]\nwhen = [{ field = "Arr", gt = 5 }]',
        "when: field 'Arr': delete_held events have no record",
    ),
    (
        'when = [{ field = "Stage", changed = false, to = "X" }]',
        "when[0]: changed = false with from/to could never hold",
    ),
]


@pytest.mark.parametrize(("lines", "expected"), NEVER)
def test_rules_that_can_never_match_are_rejected_naming_the_rule(
    tmp_path: Path, lines: str, expected: str
) -> None:
    """Such rules loaded silently and never fired."""
    cfg = config(
        sources=[{"name": "companies", "kind": "company", "ignore_fields": ["ModifiedDate"]}]
    )
    (line,) = _errors(tmp_path, HEAD + lines + "\n", cfg)
    assert line.startswith("rules[0] ('r'): "), line
    assert expected in line, line


def test_to_and_changed_with_on_created_are_meaningful_and_load(tmp_path: Path) -> None:
    """Created events satisfy ``to`` and ``changed = true`` (a created record changed
    from nothing), so these rules are not rejected."""
    write(
        tmp_path,
        "a.toml",
        HEAD + 'on = ["created"]\nwhen = [{ field = "Stage", to = "Will Churn" },'
        ' { field = "Arr", changed = true }]\n',
    )
    ruleset = load_rules(config(), base_dir=tmp_path)
    assert ruleset.names() == ["r"]
    assert ruleset.warnings == ()


def test_a_change_or_source_a_rule_cannot_match_is_a_warning(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.toml",
        '[[rules]]\nname = "w"\nsources = ["companies", "ctas"]\nsinks = ["crm"]\n'
        'on = ["created", "updated"]\nwhen = [{ field = "Arr", crosses_below = 5 },'
        ' { field = "Nps", eq = "5" }]\n',
    )
    cfg = config(
        sources=[
            {"name": "companies", "kind": "company"},
            {"name": "ctas", "kind": "cta", "ignore_fields": ["Arr"]},
        ]
    )
    ruleset = load_rules(cfg, base_dir=tmp_path)
    assert ruleset.names() == ["w"]
    warnings = [w.split(": ", 1)[1] for w in ruleset.warnings]
    assert warnings[0].startswith("rules[0] ('w'): on: 'created' never matches (when[0]: Arr ")
    assert warnings[1].startswith("rules[0] ('w'): sources: 'ctas' never matches (when[0]: ")
    assert warnings[2] == (
        "rules[0] ('w'): when[1].eq: '5' is text and matches only text, never the number 5; "
        "write it without quotes to match a number"
    )


def test_rule_errors_name_keys_and_values_as_written_one_line_each(tmp_path: Path) -> None:
    """Issue 9: ``on: 'modified' is not one of ...``, did-you-mean for unknown keys, no
    validator noise (one line per problem, not one per member of a union)."""
    lines = _errors(
        tmp_path,
        '[[rules]]\nname = "x"\nsources = ["companies"]\non = ["modified"]\nsinks = []\n'
        'whenn = []\nthrottle = { per = "keys", max = 0, window = "1h" }\n'
        'when = [{ feild = "Arr", gt = 1 }, { field = "Arr", gt = [1] },'
        ' { field = "Arr", crosses_below = "x" }, { field = "Arr", decreased_by_pct = 0 },'
        ' { field = "Arr", in = 5 }]\n',
    )
    assert sorted(lines) == sorted([
        "rules[0] ('x'): on: 'modified' is not one of created, updated, deleted, delete_held",
        "rules[0] ('x'): sinks: is empty; list at least one sink",
        "rules[0] ('x'): when[0].feild: unknown key 'feild' (did you mean field?)",
        "rules[0] ('x'): when[1].gt: [1]: expected a number, text, true/false or a date",
        "rules[0] ('x'): when[2].crosses_below: 'x' is not a number; crosses_below takes a "
        "number written without quotes, e.g. crosses_below = 50000",
        "rules[0] ('x'): when[3].decreased_by_pct: 0 is out of range; it must be more than 0",
        "rules[0] ('x'): when[4].in: 5 must be a list, e.g. in = [5]",
        "rules[0] ('x'): throttle.per: 'keys' is not one of key, rule",
        "rules[0] ('x'): throttle.max: 0 is out of range; it must be at least 1",
        "rules[0] ('x'): whenn: unknown key 'whenn' (did you mean when?)",
    ])  # fmt: skip


def test_watcher_check_prints_rule_warnings_and_exits_0_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from watcher.cli import main

    (tmp_path / "watcher.toml").write_text(
        '[gainsight]\nbase_url = "https://acme.gainsightcloud.com"\naccess_key_env = "PATH"\n'
        '[[sources]]\nname = "companies"\nkind = "company"\n'
        '[sinks.crm]\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\n'
    )
    write(tmp_path, "a.toml", HEAD + 'when = [{ field = "Stage", in = ["5"] }]\n')
    assert main(["--config", str(tmp_path / "watcher.toml"), "check"]) == 0
    captured = capsys.readouterr()
    assert "warning: " in captured.err
    assert "when[0].in: '5' is text" in captured.err
    write(tmp_path, "a.toml", HEAD + 'on = ["modified"]\n')
    assert main(["--config", str(tmp_path / "watcher.toml"), "check"]) == 2
    err = capsys.readouterr().err
    assert "on: 'modified' is not one of created, updated, deleted, delete_held" in err


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            'name = "bad name!"\nsources = ["companies"]\nsinks = ["crm"]',
            "rules[0] ('bad name!'): name: 'bad name!' is not a valid name; use letters, "
            "digits, '.', '_' and '-', starting with a letter or digit",
        ),
        (
            'name = "r"\nsources = "companies"\nsinks = ["crm"]',
            "rules[0] ('r'): sources: expected a list, not 'companies'",
        ),
        (
            'name = "r"\nsources = ["companies"]\nsinks = ["crm"]\nthrottle = 5',
            "rules[0] ('r'): throttle: expected a table, not 5",
        ),
        (
            'name = "r"\nsources = ["companies"]\nsinks = ["crm"]\nwhen = [{ field = "" , eq = 1}]',
            "rules[0] ('r'): when[0].field: is empty; write a value",
        ),
        (
            'name = "r"\nsources = ["companies"]\nsinks = ["crm"]\n'
            "when = [{ field = 'A', contains = { a = 1 } }]",
            "rules[0] ('r'): when[0].contains: { a = 1 }: expected a number, text, true/false "
            "or a date",
        ),
    ],
)
def test_shape_errors_say_what_was_written_and_what_is_expected(
    tmp_path: Path, lines: str, expected: str
) -> None:
    assert _errors(tmp_path, "[[rules]]\n" + lines + "\n") == [expected]


def test_a_rules_file_nested_5000_deep_is_one_clear_error(tmp_path: Path) -> None:
    """A hostile or broken rules file nested 5000 deep is a ConfigError naming the file
    (watcher check exits 2), never a RecursionError traceback."""
    errors = _errors(tmp_path, "x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert len(errors) == 1
    assert "nested too deeply" in errors[0]
    assert "flatten the file" in errors[0]
