"""Sinks built from ``[sinks.*]``; secrets resolved here, registered for redaction."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, assert_never

import httpx

from watcher.clock import Clock, SystemClock
from watcher.config import (
    CommandSinkConfig,
    NatsSinkConfig,
    PythonSinkConfig,
    SecretRef,
    SlackSinkConfig,
    WatcherConfig,
    WebhookSinkConfig,
    check_sink_url,  # the one https-or-loopback rule; its message never holds the URL
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
from watcher.delivery.sinks.webhook import OWN_HEADERS, WebhookSink
from watcher.errors import ConfigError
from watcher.logging import register_secret
from watcher.rules.loader import RuleSet, load_rules

if TYPE_CHECKING:  # the nats client is imported only when a nats sink is built
    from watcher.delivery.sinks.nats import NatsAuth

PREVIEW_URL = "http://127.0.0.1/preview"
_PREVIEW_KEY = b"preview-only-key-not-a-secret!!!"


class _Secrets:
    """Reads what a live sink needs: secrets (registered for redaction) and callables."""

    def __init__(self, environ: Mapping[str, str] | None, base_dir: Path | None) -> None:
        self._environ = environ
        self._base_dir = base_dir

    def url(self, name: str, sink: WebhookSinkConfig | SlackSinkConfig) -> str:
        if isinstance(sink, WebhookSinkConfig) and sink.url is not None:
            return sink.url  # checked when the config was loaded
        ref = sink_url_ref(name, sink)
        if ref is None:  # the model requires one of url, url_env, url_file
            raise ConfigError(f"sinks.{name}: give url_env or url_file")
        url = resolve_secret(ref, self._environ, self._base_dir)
        register_secret(url)  # incoming-webhook URLs carry their token
        try:
            check_sink_url(url)
        except ValueError as exc:  # the message never holds the URL
            raise ConfigError(f"{ref.setting} (from {_origin(ref)}): {exc}") from None
        return url

    def key(self, name: str, sink: WebhookSinkConfig) -> bytes | None:
        ref = sink_secret_ref(name, sink)
        if ref is None:
            return None
        secret = resolve_secret(ref, self._environ, self._base_dir)
        register_secret(secret)
        return secret_key(secret, f"sinks.{name}.secret")

    def headers(self, name: str, sink: WebhookSinkConfig) -> dict[str, str]:
        """Secret header values (registered for redaction), checked to fit a header."""
        out = {}
        for header, ref in sink.header_refs(name).items():
            value = resolve_secret(ref, self._environ, self._base_dir)
            register_secret(value)
            if any(c in value for c in "\r\n\0"):
                raise ConfigError(
                    f"{ref.setting} (from {_origin(ref)}): the value has a line break; "
                    "an HTTP header value must be one line"
                )
            out[header] = value
        return out

    def callable(self, name: str, sink: PythonSinkConfig) -> Callable[..., Any]:
        return import_callable(sink.callable, f"sinks.{name}.callable")

    def nats_auth(self, name: str, sink: NatsSinkConfig) -> NatsAuth:
        from watcher.delivery.sinks.nats import NatsAuth

        token = None
        if sink.token_env is not None or sink.token_file is not None:
            ref = SecretRef(setting=f"sinks.{name}.token", env=sink.token_env, file=sink.token_file)
            token = resolve_secret(ref, self._environ, self._base_dir)
            register_secret(token)
        return NatsAuth(
            token=token,
            creds_file=self._file(f"sinks.{name}.creds_file", sink.creds_file),
            ca_file=self._file(f"sinks.{name}.ca_file", sink.ca_file),
        )

    def _file(self, setting: str, value: str | None) -> Path | None:
        """A file the NATS client reads itself: checked readable now (content not kept)."""
        if value is None:
            return None
        ref = SecretRef(setting=setting, file=value)
        resolve_secret(ref, self._environ, self._base_dir)  # raises SecretError when unreadable
        path = Path(os.path.expandvars(value))
        if path.is_absolute():
            return path
        env = os.environ if self._environ is None else self._environ
        creds = env.get("CREDENTIALS_DIRECTORY")
        if creds and (Path(creds) / path).exists():
            return Path(creds) / path
        return (self._base_dir or Path.cwd()) / path


def _origin(ref: SecretRef) -> str:
    return f"${ref.env}" if ref.env is not None else f"file {ref.file!r}"


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
    return _build(config, http=http, clock=clock, limiter=limiter, live=_Secrets(environ, base_dir))


def check_sinks(
    config: WatcherConfig,
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Build every sink once, sending nothing, so ``watcher check`` rejects what
    ``watcher run`` would (URL scheme, signing secret, link template, callable)."""
    build_sinks(
        config, http=httpx.AsyncClient(), clock=SystemClock(), base_dir=base_dir, environ=environ
    )


def build_preview_sinks(config: WatcherConfig, *, clock: Clock) -> dict[str, Sink]:
    """Sinks that can only render (``watcher rules test``): no secret read, nothing imported.

    URLs and secrets are placeholders; :meth:`Sink.preview` never uses them.
    """
    http = httpx.AsyncClient()  # never used to send: previews do no I/O
    return _build(config, http=http, clock=clock, limiter=SlackRateLimiter(clock), live=None)


def _build(
    config: WatcherConfig,
    *,
    http: httpx.AsyncClient,
    clock: Clock,
    limiter: SlackRateLimiter,
    live: _Secrets | None,
) -> dict[str, Sink]:
    """The sinks of ``config``; with ``live=None`` placeholders stand in for secrets."""
    sinks: dict[str, Sink] = {}
    for name, cfg in config.sinks.items():
        if isinstance(cfg, WebhookSinkConfig):
            given = (*cfg.headers, *cfg.headers_env, *cfg.headers_file)
            clash = sorted(h for h in given if h.lower() in OWN_HEADERS)
            if clash:
                raise ConfigError(
                    f"sinks.{name}.headers: {', '.join(map(repr, clash))} is set by watcher "
                    "itself (CloudEvents and Standard Webhooks); remove it from headers"
                )
            if live is not None:
                url, key = live.url(name, cfg), live.key(name, cfg)
                secret_headers = live.headers(name, cfg)
            else:
                has_secret = sink_secret_ref(name, cfg) is not None
                url, key = PREVIEW_URL, _PREVIEW_KEY if has_secret else None
                secret_headers = {  # previews never read (or print) a secret
                    h: f"<secret from {_origin(ref)}>" for h, ref in cfg.header_refs(name).items()
                }
            sinks[name] = WebhookSink(
                name,
                url=url,
                key=key,
                http=http,
                clock=clock,
                timeout_s=cfg.timeout_s,
                headers={**cfg.headers, **secret_headers},
            )
        elif isinstance(cfg, SlackSinkConfig):
            problem = _template_problem(name, cfg)
            if problem is not None:
                raise ConfigError(problem)
            sinks[name] = SlackSink(
                name,
                url=live.url(name, cfg) if live is not None else PREVIEW_URL,
                http=http,
                clock=clock,
                limiter=limiter,
                timeout_s=cfg.timeout_s,
                link_template=cfg.link_template,
            )
        elif isinstance(cfg, NatsSinkConfig):
            from watcher.delivery.sinks.nats import NatsSink

            sinks[name] = NatsSink(
                name,
                url=cfg.url,
                subject=cfg.subject,
                stream=cfg.stream,
                create_stream=cfg.create_stream,
                auth=live.nats_auth(name, cfg) if live is not None else None,
                timeout_s=cfg.timeout_s,
            )
        elif isinstance(cfg, CommandSinkConfig):
            sinks[name] = CommandSink(name, command=cfg.command, timeout_s=cfg.timeout_s)
        elif isinstance(cfg, PythonSinkConfig):
            func = live.callable(name, cfg) if live is not None else _never_called
            sinks[name] = PythonSink(
                name,
                func=func,
                spec=cfg.callable,
                timeout_s=cfg.timeout_s,
                threads=cfg.concurrency,
            )
        else:
            assert_never(cfg)
    return sinks


def _template_problem(name: str, sink: SlackSinkConfig) -> str | None:
    """What is wrong with a Slack sink's ``link_template`` (``None``: nothing)."""
    if not sink.link_template:
        return None
    try:
        check_link_template(sink.link_template)
    except ValueError as exc:
        return f"sinks.{name}.link_template: {exc}"
    return None


def sink_problems(config: WatcherConfig) -> list[str]:
    """Sink settings only usable at delivery time, checked now so ``watcher check`` sees
    them with the rules: Slack link-template placeholders and Python sink callables."""
    problems = []
    for name, sink in config.sinks.items():
        if isinstance(sink, SlackSinkConfig):
            problem = _template_problem(name, sink)
            if problem is not None:
                problems.append(f"config: {problem}")
        elif isinstance(sink, PythonSinkConfig):
            try:
                import_callable(sink.callable, f"sinks.{name}.callable")
            except ConfigError as exc:
                problems.append(f"config: {exc}")
    return problems


def load_checked_rules(config: WatcherConfig, *, base_dir: Path | None = None) -> RuleSet:
    """The rules of ``config``, loaded with the sink settings they deliver through
    checked too; one ConfigError lists every problem of both."""
    return load_rules(config, base_dir=base_dir, also=sink_problems(config))


def sink_health(sinks: Mapping[str, Sink]) -> dict[str, str]:
    """``{sink: "ok" | why degraded}`` for sinks that can degrade (a ``health()`` method)."""
    out = {}
    for name, sink in sinks.items():
        health = getattr(sink, "health", None)
        if callable(health):
            out[name] = str(health())
    return out


def _never_called(event: object) -> None:
    raise AssertionError("preview sinks never send")
