"""Property-based fuzzing of config files: a clear ConfigError or a valid config, never a crash."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.config import WatcherConfig, load_config, parse_config
from watcher.errors import ConfigError

KEYS = [
    "gainsight", "base_url", "access_key_env", "access_key_file", "requests_per_minute",
    "requests_per_day", "timeout_s", "store", "path", "http", "listen", "feed_token_env",
    "rules", "paths", "sources", "name", "kind", "object", "select", "key", "ignore_fields",
    "full_sweep", "incremental", "incremental_overlap", "delete_log", "timezone",
    "max_delete_fraction", "baseline", "paging", "page_size", "sinks", "type", "url",
    "url_env", "secret_env", "command", "callable", "retry_schedule", "typo",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        ["company", "cta", "goal", "object", "webhook", "slack", "https://a.b", "*/5 * * * *",
         "*/61 * * * *", "10m", "UTC", "Nowhere/Zone", "http://127.0.0.1:1/x", "silent"]
    ),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)
    ),
    max_leaves=25,
)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(documents)
def test_any_mapping_gives_a_config_or_a_config_error(doc: dict[str, Any]) -> None:
    """Arbitrary nested data never raises anything but ConfigError, and says where."""
    try:
        config = parse_config(doc, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: ")
    else:
        assert isinstance(config, WatcherConfig)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode()))
def test_any_file_bytes_give_a_config_or_a_config_error(raw: bytes) -> None:
    """Garbage bytes, bad UTF-8 and bad TOML end in a ConfigError naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "watcher.toml"
        path.write_bytes(raw)
        try:
            load_config(path)
        except ConfigError as exc:
            assert str(path) in str(exc)
