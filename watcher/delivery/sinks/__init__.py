"""Sinks built from ``[sinks.*]``; secrets resolved here, registered for redaction."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx

from watcher.clock import Clock
from watcher.config import (
    CommandSinkConfig,
    PythonSinkConfig,
    SlackSinkConfig,
    WatcherConfig,
    WebhookSinkConfig,
    resolve_secret,
    sink_secret_ref,
    sink_url_ref,
)
from watcher.delivery.base import Sink
from watcher.delivery.render import check_link_template
from watcher.delivery.signing import secret_key
from watcher.delivery.sinks.command import CommandSink
from watcher.delivery.sinks.python import PythonSink, import_callable
from watcher.delivery.sinks.slack import SlackRateLimiter, SlackSink
from watcher.delivery.sinks.webhook import WebhookSink
from watcher.errors import ConfigError
from watcher.logging import register_secret


def _url(
    name: str,
    sink: WebhookSinkConfig | SlackSinkConfig,
    environ: Mapping[str, str] | None,
    base_dir: Path | None,
) -> str:
    if isinstance(sink, WebhookSinkConfig) and sink.url is not None:
        return sink.url
    ref = sink_url_ref(name, sink)
    assert ref is not None
    url = resolve_secret(ref, environ, base_dir)
    register_secret(url)  # incoming-webhook URLs carry their token
    return url


def build_sinks(
    config: WatcherConfig,
    *,
    http: httpx.AsyncClient,
    clock: Clock,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    limiter: SlackRateLimiter | None = None,
) -> dict[str, Sink]:
    """One sink per ``[sinks.NAME]``; raises ConfigError for unusable settings."""
    limiter = limiter or SlackRateLimiter(clock)
    sinks: dict[str, Sink] = {}
    for name, cfg in config.sinks.items():
        if isinstance(cfg, WebhookSinkConfig):
            ref = sink_secret_ref(name, cfg)
            key = None
            if ref is not None:
                secret = resolve_secret(ref, environ, base_dir)
                register_secret(secret)
                key = secret_key(secret, f"sinks.{name}.secret")
            sinks[name] = WebhookSink(
                name,
                url=_url(name, cfg, environ, base_dir),
                key=key,
                http=http,
                clock=clock,
                timeout_s=cfg.timeout_s,
                headers=cfg.headers,
            )
        elif isinstance(cfg, SlackSinkConfig):
            if cfg.link_template:
                try:
                    check_link_template(cfg.link_template)
                except ValueError as exc:
                    raise ConfigError(f"sinks.{name}.link_template: {exc}") from None
            sinks[name] = SlackSink(
                name,
                url=_url(name, cfg, environ, base_dir),
                http=http,
                clock=clock,
                limiter=limiter,
                timeout_s=cfg.timeout_s,
                link_template=cfg.link_template,
            )
        elif isinstance(cfg, CommandSinkConfig):
            sinks[name] = CommandSink(name, command=cfg.command, timeout_s=cfg.timeout_s)
        else:
            assert isinstance(cfg, PythonSinkConfig)
            func = import_callable(cfg.callable, f"sinks.{name}.callable")
            sinks[name] = PythonSink(name, func=func, spec=cfg.callable, timeout_s=cfg.timeout_s)
    return sinks


def build_preview_sinks(config: WatcherConfig, *, clock: Clock) -> dict[str, Sink]:
    """Sinks that can only render (``watcher rules test``): no secret read, nothing imported.

    URLs and secrets are placeholders; :meth:`Sink.preview` never uses them.
    """
    http = httpx.AsyncClient()  # never used to send: previews do no I/O
    placeholder_key = b"preview-only-key-not-a-secret!!!"
    sinks: dict[str, Sink] = {}
    for name, cfg in config.sinks.items():
        if isinstance(cfg, WebhookSinkConfig):
            has_secret = sink_secret_ref(name, cfg) is not None
            sinks[name] = WebhookSink(
                name,
                url="http://127.0.0.1/preview",
                key=placeholder_key if has_secret else None,
                http=http,
                clock=clock,
                headers=cfg.headers,
            )
        elif isinstance(cfg, SlackSinkConfig):
            sinks[name] = SlackSink(
                name,
                url="http://127.0.0.1/preview",
                http=http,
                clock=clock,
                limiter=SlackRateLimiter(clock),
                link_template=cfg.link_template,
            )
        elif isinstance(cfg, CommandSinkConfig):
            sinks[name] = CommandSink(name, command=cfg.command, timeout_s=cfg.timeout_s)
        else:
            assert isinstance(cfg, PythonSinkConfig)
            sinks[name] = PythonSink(name, func=_never_called, spec=cfg.callable)
    return sinks


def _never_called(event: object) -> None:
    raise AssertionError("preview sinks never send")
