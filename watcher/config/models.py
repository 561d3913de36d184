"""The ``watcher.toml`` sections: frozen pydantic models holding the admin's settings.

How a source's settings become requests (routes, paging, page sizes) is Gainsight
knowledge and lives in :mod:`watcher.gainsight.routes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from watcher.config.base import _check_cron, _check_duration, _Model
from watcher.config.secrets import SecretRef, _one_of, _secret
from watcher.config.sinks import NatsSinkConfig, SinkConfig, SlackSinkConfig, WebhookSinkConfig
from watcher.config.urls import is_loopback_host
from watcher.durations import parse_duration
from watcher.errors import ConfigError


class GainsightConfig(_Model):
    base_url: str
    access_key_env: str | None = None
    access_key_file: str | None = None
    requests_per_minute: Annotated[int, Field(gt=0)] = 100
    requests_per_day: Annotated[int, Field(gt=0)] = 50_000
    timeout_s: Annotated[float, Field(gt=0)] = 30.0
    max_retries: Annotated[int, Field(ge=0, le=20)] = 5

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(
                "base_url must be a full URL such as 'https://acme.gainsightcloud.com'"
            )
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError("base_url must use https:// (http:// only on loopback)")
        if parts.username or parts.password or parts.query:
            raise ValueError(
                "base_url must not carry credentials or a query string; "
                "give the access key with access_key_env or access_key_file"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _key(self) -> GainsightConfig:
        _one_of(self.access_key_env, self.access_key_file, "access_key", required=True)
        return self

    @property
    def access_key(self) -> SecretRef:
        # The validator above makes one of the two required: the env name wins when set.
        if self.access_key_env is not None:
            return SecretRef(setting="gainsight.access_key", env=self.access_key_env)
        return SecretRef(setting="gainsight.access_key", file=self.access_key_file)

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""


class StoreConfig(_Model):
    path: str = "watcher.db"
    #: How long events are kept (an event still waiting for a delivery stays).
    retain_events: str = "90d"
    #: How long delivered (and suppressed) deliveries are kept.
    retain_delivered: str = "30d"
    #: How long the poll history is kept.
    retain_polls: str = "30d"
    #: How long dead deliveries are kept for a retry, from when they were queued.
    retain_dead: str = "90d"

    @field_validator("retain_events", "retain_delivered", "retain_polls", "retain_dead")
    @classmethod
    def _retention(cls, value: str) -> str:
        if parse_duration(value) < 3600:
            raise ValueError(f"retention {value!r} is too short; keep at least '1h', e.g. '30d'")
        return value


#: A feed token shorter than this is refused (``watcher check`` and ``run`` exit 2).
MIN_FEED_TOKEN = 16


class HttpConfig(_Model):
    listen: str = "127.0.0.1:8790"
    feed_token_env: str | None = None
    feed_token_file: str | None = None
    #: Extra names the server answers to in ``Host`` (behind a proxy or a DNS name).
    allowed_hosts: tuple[str, ...] = ()

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("listen must be 'HOST:PORT', e.g. '127.0.0.1:8790'")
        return value

    @model_validator(mode="after")
    def _token(self) -> HttpConfig:
        _one_of(self.feed_token_env, self.feed_token_file, "feed_token", required=False)
        if not is_loopback_host(self.host) and self.feed_token is None:
            raise ValueError(
                f"listen {self.listen!r} is reachable from other hosts: set feed_token_env "
                f"or feed_token_file (a token of {MIN_FEED_TOKEN} or more characters, needed "
                "then for everything but /healthz), or listen on 127.0.0.1"
            )
        return self

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def feed_token(self) -> SecretRef | None:
        return _secret("http.feed_token", self.feed_token_env, self.feed_token_file, MIN_FEED_TOKEN)


class RulesConfig(_Model):
    paths: tuple[str, ...] = ("rules",)


#: The shortest ``poll_every`` accepted (seconds).
MIN_POLL_EVERY_S = 1.0

SourceKind = Literal["company", "cta", "goal", "object"]


class SourceConfig(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    kind: SourceKind
    object: str | None = None
    select: tuple[str, ...] = ()
    key: str = "Gsid"
    ignore_fields: tuple[str, ...] = ()
    date_fields: tuple[str, ...] = ()
    modified_field: str = "ModifiedDate"
    full_sweep: str = "0 */6 * * *"
    incremental: str | None = None
    incremental_overlap: str = "10m"
    delete_log: str | None = None
    #: The fast lane: incremental and delete reads every ``poll_every`` instead of by cron.
    poll_every: str | None = None
    #: How far the fast lane stretches while its reads find nothing (default 4x poll_every).
    poll_every_max: str | None = None
    timezone: str = "UTC"
    max_delete_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    baseline: Literal["silent", "emit"] = "silent"
    api: Literal["query", "cockpit"] | None = None
    path: str | None = None
    paging: Literal["page", "offset"] | None = None
    page_size: Annotated[int, Field(gt=0, le=5000)] | None = None
    jitter: str = "0s"

    @field_validator("full_sweep")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value)

    @field_validator("incremental", "delete_log")
    @classmethod
    def _opt_cron(cls, value: str | None) -> str | None:
        return None if value is None else _check_cron(value)

    @field_validator("incremental_overlap", "jitter")
    @classmethod
    def _duration(cls, value: str) -> str:
        return _check_duration(value)

    @field_validator("poll_every", "poll_every_max")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _check_duration(value)
        if parse_duration(value) < MIN_POLL_EVERY_S:
            raise ValueError(
                f"{value!r} is too short; the fast lane reads at most once a second, e.g. '10s'"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'"
            ) from exc
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("path must start with '/', e.g. '/v1/data/objects/query/Company'")
        return value

    @model_validator(mode="after")
    def _kind_rules(self) -> SourceConfig:
        if self.kind == "object" and not self.object:
            raise ValueError("kind = 'object' needs object = '<MDA object name>'")
        if self.kind not in ("object", "goal") and self.object is not None:
            raise ValueError(
                f"object is only for kind = 'object' or 'goal' (this source is {self.kind!r})"
            )
        if self.api is not None and self.kind != "cta":
            raise ValueError(
                f"api is only for kind = 'cta' (this source is {self.kind!r}); remove it"
            )
        self._fast_lane_rules()
        if self.key in self.ignore_fields:
            raise ValueError(f"the key field {self.key!r} cannot be in ignore_fields")
        if self.delete_log is not None and not self.has_delete_feed:
            raise ValueError(
                f"delete_log: Gainsight has no delete feed for path {self.path!r}; remove "
                "delete_log (full sweeps still find deletes) or the path override"
            )
        return self

    def _fast_lane_rules(self) -> None:
        if self.poll_every is None:
            if self.poll_every_max is not None:
                raise ValueError("poll_every_max needs poll_every (the fast lane), e.g. '10s'")
            return
        crons = [n for n in ("incremental", "delete_log") if getattr(self, n) is not None]
        if crons:
            raise ValueError(
                f"poll_every replaces the {' and '.join(crons)} cron: remove "
                f"{' and '.join(crons)} or poll_every"
            )
        if self.poll_every_max is not None and parse_duration(self.poll_every_max) < (
            parse_duration(self.poll_every)
        ):
            raise ValueError(
                f"poll_every_max {self.poll_every_max!r} is shorter than poll_every "
                f"{self.poll_every!r}; make it equal or longer (default 4x poll_every)"
            )

    @property
    def has_delete_feed(self) -> bool:
        """Gainsight has a delete feed for what this source reads (not for every path)."""
        return (
            self.path is None
            or self.path.startswith("/v1/data/objects/query/")
            or (self.kind == "cta" and self.path.rstrip("/") == "/v2/cockpit/cta/list")
        )

    @property
    def fast_lane(self) -> tuple[float, float] | None:
        """``(poll_every, poll_every_max)`` in seconds, or ``None`` without a fast lane."""
        if self.poll_every is None:
            return None
        every = parse_duration(self.poll_every)
        top = parse_duration(self.poll_every_max) if self.poll_every_max else 4 * every
        return every, top

    @property
    def object_name(self) -> str:
        """The Gainsight object this source reads.

        A goal source without ``object`` reads the object the tenant's metadata names
        (the poll engine resolves it once and passes a copy with ``object`` set);
        until then its name is the placeholder ``"goal"``.
        """
        if self.object:
            return self.object
        return {"company": "Company", "cta": "call_to_action", "goal": "goal"}.get(
            self.kind, self.kind
        )

    @property
    def needs_object_lookup(self) -> bool:
        """A goal source whose object API name must come from the tenant's metadata."""
        return self.kind == "goal" and not self.object and not self.path

    @property
    def event_kind(self) -> str:
        """The ``<kind>`` in ``gainsight.<kind>.<change>``."""
        if self.kind == "object":
            return self.object_name.lower()
        return self.kind

    @property
    def overlap_seconds(self) -> float:
        return parse_duration(self.incremental_overlap)

    @property
    def jitter_seconds(self) -> float:
        return parse_duration(self.jitter)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class WatcherConfig(_Model):
    gainsight: GainsightConfig
    store: StoreConfig = StoreConfig()
    http: HttpConfig | None = None
    rules: RulesConfig = RulesConfig()
    sources: tuple[SourceConfig, ...] = ()
    sinks: Mapping[str, SinkConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> WatcherConfig:
        seen: set[str] = set()
        for src in self.sources:
            if src.name in seen:
                raise ValueError(f"source name {src.name!r} is used twice; names must be unique")
            seen.add(src.name)
        return self

    def source(self, name: str) -> SourceConfig:
        for src in self.sources:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"no source named {name!r} (configured: {known})")

    def secret_refs(self) -> list[SecretRef]:
        """Every secret the config refers to, for ``watcher check``."""
        refs = [self.gainsight.access_key]
        if self.http and self.http.feed_token:
            refs.append(self.http.feed_token)
        for name, sink in self.sinks.items():
            if isinstance(sink, WebhookSinkConfig | SlackSinkConfig):
                url = _secret(f"sinks.{name}.url", sink.url_env, sink.url_file)
                if url:
                    refs.append(url)
            if isinstance(sink, WebhookSinkConfig):
                sec = _secret(f"sinks.{name}.secret", sink.secret_env, sink.secret_file)
                if sec:
                    refs.append(sec)
                refs.extend(sink.header_refs(name).values())
            if isinstance(sink, NatsSinkConfig):
                token = _secret(f"sinks.{name}.token", sink.token_env, sink.token_file)
                if token:
                    refs.append(token)
        return refs


def sink_url_ref(name: str, sink: WebhookSinkConfig | SlackSinkConfig) -> SecretRef | None:
    return _secret(f"sinks.{name}.url", sink.url_env, sink.url_file)


def sink_secret_ref(name: str, sink: WebhookSinkConfig) -> SecretRef | None:
    return _secret(f"sinks.{name}.secret", sink.secret_env, sink.secret_file)
