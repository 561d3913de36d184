"""``watcher.toml``: frozen pydantic models, one loader, secret resolution.

Loaded once, validated strictly (``extra="forbid"``: a misspelt key is an error).
Every error names the file, the key path and what to do. Secrets are never part
of the models: a model holds only *where* a secret is (``*_env`` or ``*_file``);
:func:`resolve_secret` reads it when it is needed.

The package, one module per job: ``models`` (the sections), ``sinks`` (the sink
sections), ``secrets`` (where a secret is, and reading it), ``urls`` (the URL policy),
``explain`` (validation errors in the admin's words), ``load`` (TOML in, models out).
"""

from watcher.config.explain import explain_error, format_validation_error
from watcher.config.load import DEFAULT_CONFIG, default_config_path, load_config, parse_config
from watcher.config.models import (
    MIN_FEED_TOKEN,
    GainsightConfig,
    HttpConfig,
    RulesConfig,
    SourceConfig,
    SourceKind,
    StoreConfig,
    WatcherConfig,
    sink_secret_ref,
    sink_url_ref,
)
from watcher.config.secrets import SecretRef, resolve_secret
from watcher.config.sinks import (
    DEFAULT_RETRY_SCHEDULE,
    CommandSinkConfig,
    NatsSinkConfig,
    PythonSinkConfig,
    SinkConfig,
    SlackSinkConfig,
    WebhookSinkConfig,
)
from watcher.config.urls import check_nats_url, check_sink_url, is_loopback_host

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_RETRY_SCHEDULE",
    "MIN_FEED_TOKEN",
    "CommandSinkConfig",
    "GainsightConfig",
    "HttpConfig",
    "NatsSinkConfig",
    "PythonSinkConfig",
    "RulesConfig",
    "SecretRef",
    "SinkConfig",
    "SlackSinkConfig",
    "SourceConfig",
    "SourceKind",
    "StoreConfig",
    "WatcherConfig",
    "WebhookSinkConfig",
    "check_nats_url",
    "check_sink_url",
    "default_config_path",
    "explain_error",
    "format_validation_error",
    "is_loopback_host",
    "load_config",
    "parse_config",
    "resolve_secret",
    "sink_secret_ref",
    "sink_url_ref",
]
