"""Config loading: strict models, errors that say what, where and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from watcher.config import (
    SecretRef,
    WebhookSinkConfig,
    load_config,
    parse_config,
    resolve_secret,
)
from watcher.errors import ConfigError, SecretError
from watcher.gainsight.routes import page_size_of, paging_of, path_of

SRC = "sources['companies']"  # how errors name the source: by its name

BASE = """
[gainsight]
base_url = "https://acme.gainsightcloud.com"
access_key_env = "GAINSIGHT_ACCESS_KEY"

[[sources]]
name = "companies"
kind = "company"
select = ["Gsid", "Name", "Arr"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watcher.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return str(info.value)


def test_minimal_config_loads_with_defaults(tmp_path: Path) -> None:
    """The spec's defaults apply when a key is left out."""
    config = load_config(write(tmp_path, BASE))
    assert config.gainsight.requests_per_minute == 100
    assert config.gainsight.requests_per_day == 50_000
    source = config.sources[0]
    assert source.key == "Gsid"
    assert source.baseline == "silent"
    assert source.max_delete_fraction == 0.2
    assert path_of(source) == "/v1/data/objects/query/Company"
    assert paging_of(source) == "offset"
    assert page_size_of(source) == 5000
    assert config.store.path == "watcher.db"


def test_spec_example_config_loads(tmp_path: Path) -> None:
    """The full example from spec.md is valid as written."""
    text = (
        BASE.replace('select = ["Gsid", "Name", "Arr"]', "")
        + """
select = ["Gsid", "Name", "Arr", "Stage", "Status", "Csm", "RenewalDate", "ModifiedDate"]
key = "Gsid"
ignore_fields = ["ModifiedDate"]
full_sweep = "0 */6 * * *"
incremental = "*/2 * * * *"
incremental_overlap = "10m"
delete_log = "*/10 * * * *"
timezone = "UTC"
max_delete_fraction = 0.2
baseline = "silent"

[[sources]]
name = "ctas"
kind = "cta"

[[sources]]
name = "goals"
kind = "goal"
path = "/v1/csgoal/external/list"
paging = "page"

[[sources]]
name = "relationships"
kind = "object"
object = "Relationship"

[store]
path = "watcher.db"

[http]
listen = "127.0.0.1:8790"
feed_token_env = "WATCHER_FEED_TOKEN"

[rules]
paths = ["rules"]

[sinks.ops-slack]
type = "slack"
url_env = "SLACK_WEBHOOK_URL"

[sinks.crm]
type = "webhook"
url = "https://hooks.example.com/gainsight"
secret_env = "CRM_WEBHOOK_SECRET"
"""
    )
    config = load_config(write(tmp_path, text))
    assert [s.name for s in config.sources] == ["companies", "ctas", "goals", "relationships"]
    # CTAs read the documented query route by default (api = "cockpit" keeps the list)
    assert path_of(config.source("ctas")) == "/v1/data/objects/query/call_to_action"
    assert page_size_of(config.source("ctas")) == 5000
    assert config.source("relationships").event_kind == "relationship"
    assert path_of(config.source("relationships")) == ("/v1/data/objects/query/Relationship")
    assert isinstance(config.sinks["crm"], WebhookSinkConfig)
    assert config.sinks["crm"].retry_delays[:3] == (0.0, 5.0, 300.0)
    assert config.http is not None
    assert config.http.port == 8790


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("\n[gainsight2]\nx = 1\n", "gainsight2: unknown key"),
        (
            'full_sweep = "*/61 * * * *"\n',
            SRC + ".full_sweep: cron '*/61 * * * *' is invalid",
        ),
        (
            'timezone = "Mars/Base"\n',
            SRC + ".timezone: unknown time zone 'Mars/Base'",
        ),
        ('kind2 = "x"\n', SRC + ".kind2: unknown key (did you mean kind?)"),
        (
            'incremental_overlap = "ten minutes"\n',
            SRC + ".incremental_overlap: duration",
        ),
        (
            "max_delete_fraction = 2\n",
            SRC + ".max_delete_fraction: 2: must be less than or equal to 1",
        ),
        ('ignore_fields = ["Gsid"]\n', "cannot be in ignore_fields"),
    ],
)
def test_source_errors_name_file_key_path_and_fix(
    tmp_path: Path, snippet: str, expected: str
) -> None:
    """Each mistake is reported with the file and key path."""
    message = error_of(tmp_path, BASE + snippet)
    assert str(tmp_path / "watcher.toml") in message
    assert expected in message


def test_duplicate_source_names_are_rejected(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE + '\n[[sources]]\nname = "companies"\nkind = "cta"\n')
    assert "source name 'companies' is used twice" in message


def test_http_sink_url_must_be_https_except_loopback(tmp_path: Path) -> None:
    """Plain http is refused for remote sinks and allowed on loopback."""
    remote = BASE + '\n[sinks.x]\ntype = "webhook"\nurl = "http://hooks.example.com/x"\n'
    assert "sinks.x.url: sink URLs must be https://" in error_of(tmp_path, remote)
    local = BASE + '\n[sinks.x]\ntype = "webhook"\nurl = "http://127.0.0.1:9000/x"\n'
    assert load_config(write(tmp_path, local)).sinks["x"].type == "webhook"


def test_unknown_sink_type_is_an_error(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE + '\n[sinks.x]\ntype = "pager"\n')
    assert "sinks.x" in message


def test_secret_cannot_be_written_inline(tmp_path: Path) -> None:
    """`access_key = "..."` is an unknown key: secrets never sit in the file."""
    text = BASE.replace('access_key_env = "GAINSIGHT_ACCESS_KEY"', 'access_key = "hunter2-key"')
    message = error_of(tmp_path, text)
    assert "gainsight.access_key: unknown key" in message
    assert "hunter2-key" not in message


def test_access_key_is_required(tmp_path: Path) -> None:
    text = BASE.replace('access_key_env = "GAINSIGHT_ACCESS_KEY"\n', "")
    assert "access_key is required" in error_of(tmp_path, text)


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    assert "invalid TOML" in error_of(tmp_path, "[gainsight\n")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_object_source_needs_object_name() -> None:
    data: dict[str, Any] = {
        "gainsight": {"base_url": "https://a.gainsightcloud.com", "access_key_env": "K"},
        "sources": [{"name": "rel", "kind": "object"}],
    }
    with pytest.raises(ConfigError, match=r"sources\['rel'\]: .*needs object"):
        parse_config(data)


def test_rate_limits_accept_any_positive_integer() -> None:
    data: dict[str, Any] = {
        "gainsight": {
            "base_url": "https://a.gainsightcloud.com",
            "access_key_env": "K",
            "requests_per_minute": 1000,
            "requests_per_day": 1_000_000,
        }
    }
    assert parse_config(data).gainsight.requests_per_minute == 1000
    data["gainsight"]["requests_per_minute"] = 0
    with pytest.raises(ConfigError, match="requests_per_minute"):
        parse_config(data)


def test_resolve_secret_from_env_and_file(tmp_path: Path) -> None:
    """Secrets come from the environment or a file; errors name the setting only."""
    ref = SecretRef(setting="gainsight.access_key", env="GS_KEY")
    assert resolve_secret(ref, {"GS_KEY": "s3cret-value"}) == "s3cret-value"
    with pytest.raises(SecretError, match="GS_KEY is not set") as info:
        resolve_secret(ref, {})
    assert "s3cret" not in str(info.value)

    (tmp_path / "key").write_text("from-file-secret\n")
    file_ref = SecretRef(setting="gainsight.access_key", file="key")
    assert resolve_secret(file_ref, {}, base_dir=tmp_path) == "from-file-secret"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "key").write_text("from-credentials")
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    assert resolve_secret(file_ref, env, base_dir=tmp_path) == "from-credentials"
    with pytest.raises(SecretError, match="cannot read file"):
        resolve_secret(SecretRef(setting="s", file="missing"), {}, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            'name = "ctas"\nkind = "cta"\nfullsweep = "0 * * * *"\n',
            "sources['ctas'].fullsweep: unknown key (did you mean full_sweep?)",
        ),
        (
            'name = "c"\nkind = "contract"\n',
            "sources['c'].kind: 'contract' is not one of company, cta, goal, object",
        ),
        ('name = "c"\nkind = "cta"\nselect = "Gsid"\n', "sources['c'].select: must be a list"),
        ('name = "c"\nkind = "cta"\npage_size = "big"\n', "'big' is not a whole number"),
        (
            'name = "c"\nkind = "company"\napi = "cockpit"\n',
            "sources['c']: api is only for kind = 'cta'",
        ),
    ],
)
def test_config_errors_name_the_key_as_written_and_the_bad_value(
    tmp_path: Path, source: str, expected: str
) -> None:
    """One line per problem, the source by name, did-you-mean, the value; no validator noise."""
    message = error_of(tmp_path, BASE + "\n[[sources]]\n" + source)
    assert expected in message
    assert len(message.splitlines()) == 1
    assert "Input should" not in message
    assert "after validation" not in message
    assert str(tmp_path.resolve()) in message or str(tmp_path) in message


def test_delete_log_on_a_path_without_a_delete_feed_is_refused(tmp_path: Path) -> None:
    source = (
        'name = "goals"\nkind = "goal"\npath = "/v1/csgoal/external/list"\npaging = "page"\n'
        'delete_log = "*/10 * * * *"\n'
    )
    message = error_of(tmp_path, BASE + "\n[[sources]]\n" + source)
    assert "sources['goals']: delete_log: Gainsight has no delete feed" in message


def test_poll_every_is_a_fast_lane_with_a_default_stretch(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE + 'poll_every = "10s"\n'))
    assert config.sources[0].fast_lane == (10.0, 40.0)
    config = load_config(write(tmp_path, BASE + 'poll_every = "10s"\npoll_every_max = "1m"\n'))
    assert config.sources[0].fast_lane == (10.0, 60.0)
    assert load_config(write(tmp_path, BASE)).sources[0].fast_lane is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('poll_every = "500ms"\n', "poll_every"),
        ('poll_every = "0s"\n', "too short"),
        ('poll_every = "ten"\n', "poll_every"),
        ('poll_every = "10s"\nincremental = "* * * * *"\n', "poll_every replaces the incremental"),
        ('poll_every = "10s"\ndelete_log = "* * * * *"\n', "remove delete_log or poll_every"),
        ('poll_every = "10s"\npoll_every_max = "5s"\n', "shorter than poll_every"),
        ('poll_every_max = "1m"\n', "poll_every_max needs poll_every"),
    ],
)
def test_poll_every_errors_say_what_and_what_to_do(
    tmp_path: Path, extra: str, message: str
) -> None:
    error = error_of(tmp_path, BASE + extra)
    assert SRC in error
    assert message in error
