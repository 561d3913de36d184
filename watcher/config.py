"""``watcher.toml``: frozen pydantic models, one loader, secret resolution.

Loaded once, validated strictly (``extra="forbid"``: a misspelt key is an error).
Every error names the file, the key path and what to do. Secrets are never part
of the models: a model holds only *where* a secret is (``*_env`` or ``*_file``);
:func:`resolve_secret` reads it when it is needed.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from watcher.durations import parse_duration
from watcher.errors import ConfigError, SecretError

DEFAULT_CONFIG = "watcher.toml"
DEFAULT_RETRY_SCHEDULE = ("0s", "5s", "5m", "30m", "2h", "5h", "10h", "10h")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_CRON_FIELDS = (
    ("minutes", 0, 59),
    ("hours", 0, 23),
    ("days", 1, 31),
    ("months", 1, 12),
    ("weekdays", 0, 7),
)


def _check_cron(expr: str) -> str:
    """Five-field cron; steps and values must fit each field (croniter accepts '*/61')."""
    fields = expr.split()
    advice = "use five fields 'minute hour day month weekday', e.g. '*/5 * * * *'"
    if len(fields) != 5:
        raise ValueError(f"cron {expr!r} is invalid ({len(fields)} fields); {advice}")
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            _, _, step = part.partition("/")
            if step.isdigit() and not 0 < int(step) <= high - low + 1:
                raise ValueError(
                    f"cron {expr!r} is invalid ({name} are {low}-{high}, step {step} is out "
                    f"of range); {advice}"
                )
    if not croniter.is_valid(expr):
        ranges = ", ".join(f"{n} {lo}-{hi}" for n, lo, hi in _CRON_FIELDS)
        raise ValueError(f"cron {expr!r} is invalid ({ranges}); {advice}")
    return expr


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and 127.0.0.0/8 / ::1 addresses."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_sink_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise ValueError(
        "sink URLs must be https:// (plain http:// is allowed only on loopback: "
        "127.0.0.1 or localhost)"
    )


class SecretRef(_Model):
    """Where a secret lives. Exactly one of ``env`` / ``file``."""

    setting: str
    env: str | None = None
    file: str | None = None


def _secret(setting: str, env: str | None, file: str | None) -> SecretRef | None:
    if env is None and file is None:
        return None
    return SecretRef(setting=setting, env=env, file=file)


def _one_of(env: str | None, file: str | None, name: str, *, required: bool) -> None:
    if env is not None and file is not None:
        raise ValueError(f"give either {name}_env or {name}_file, not both")
    if required and env is None and file is None:
        raise ValueError(
            f"{name} is required: set {name}_env (an environment variable name) "
            f"or {name}_file (a file path); secrets never sit in the config file"
        )


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
        ref = _secret("gainsight.access_key", self.access_key_env, self.access_key_file)
        assert ref is not None
        return ref

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""


class StoreConfig(_Model):
    path: str = "watcher.db"


class HttpConfig(_Model):
    listen: str = "127.0.0.1:8790"
    feed_token_env: str | None = None
    feed_token_file: str | None = None

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
        return self

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def feed_token(self) -> SecretRef | None:
        return _secret("http.feed_token", self.feed_token_env, self.feed_token_file)


class RulesConfig(_Model):
    paths: tuple[str, ...] = ("rules",)


SourceKind = Literal["company", "cta", "goal", "object"]


class SourceConfig(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    kind: SourceKind
    object: str | None = None
    select: tuple[str, ...] = ()
    key: str = "Gsid"
    ignore_fields: tuple[str, ...] = ()
    modified_field: str = "ModifiedDate"
    full_sweep: str = "0 */6 * * *"
    incremental: str | None = None
    incremental_overlap: str = "10m"
    delete_log: str | None = None
    timezone: str = "UTC"
    max_delete_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    baseline: Literal["silent", "emit"] = "silent"
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
            raise ValueError("path must start with '/', e.g. '/v1/csgoal/external/list'")
        return value

    @model_validator(mode="after")
    def _kind_rules(self) -> SourceConfig:
        if self.kind == "object" and not self.object:
            raise ValueError("kind = 'object' needs object = '<MDA object name>'")
        if self.kind != "object" and self.object is not None:
            raise ValueError(f"object is only for kind = 'object' (this source is {self.kind!r})")
        if self.key in self.ignore_fields:
            raise ValueError(f"the key field {self.key!r} cannot be in ignore_fields")
        return self

    @property
    def object_name(self) -> str:
        """The Gainsight object this source reads."""
        if self.kind == "object":
            assert self.object is not None
            return self.object
        return {"company": "Company", "cta": "call_to_action", "goal": "cs_goal"}[self.kind]

    @property
    def event_kind(self) -> str:
        """The ``<kind>`` in ``gainsight.<kind>.<change>``."""
        if self.kind == "object":
            return self.object_name.lower()
        return self.kind

    @property
    def effective_path(self) -> str:
        if self.path:
            return self.path
        return {
            "company": "/v1/data/objects/query/Company",
            "object": f"/v1/data/objects/query/{self.object}",
            "cta": "/v2/cockpit/cta/list",
            "goal": "/v1/csgoal/external/list",
        }[self.kind]

    @property
    def effective_paging(self) -> Literal["page", "offset"]:
        if self.paging:
            return self.paging
        return "page" if self.kind in ("cta", "goal") else "offset"

    @property
    def effective_page_size(self) -> int:
        if self.page_size:
            return self.page_size
        return 1000 if self.effective_paging == "page" else 5000

    @property
    def overlap_seconds(self) -> float:
        return parse_duration(self.incremental_overlap)

    @property
    def jitter_seconds(self) -> float:
        return parse_duration(self.jitter)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_run(self, cron: str, after: datetime) -> datetime:
        """Next time ``cron`` fires after ``after``, in this source's zone (pure)."""
        local = after.astimezone(self.zone)
        nxt: datetime = croniter(cron, local).get_next(datetime)
        return nxt


def _retry_schedule_default() -> tuple[str, ...]:
    return DEFAULT_RETRY_SCHEDULE


class _SinkBase(_Model):
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    retry_schedule: tuple[str, ...] = Field(default_factory=_retry_schedule_default)
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4

    @field_validator("retry_schedule")
    @classmethod
    def _schedule(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("retry_schedule needs at least one entry, e.g. ['0s', '5s']")
        for item in value:
            _check_duration(item)
        return value

    @property
    def retry_delays(self) -> tuple[float, ...]:
        return tuple(parse_duration(v) for v in self.retry_schedule)


class WebhookSinkConfig(_SinkBase):
    type: Literal["webhook"]
    url: str | None = None
    url_env: str | None = None
    url_file: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    headers: Mapping[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_sink_url(value)

    @model_validator(mode="after")
    def _refs(self) -> WebhookSinkConfig:
        given = [v for v in (self.url, self.url_env, self.url_file) if v is not None]
        if len(given) != 1:
            raise ValueError("a webhook sink needs exactly one of url, url_env, url_file")
        _one_of(self.secret_env, self.secret_file, "secret", required=False)
        return self


class SlackSinkConfig(_SinkBase):
    type: Literal["slack"]
    url_env: str | None = None
    url_file: str | None = None
    link_template: str | None = None
    concurrency: Annotated[int, Field(ge=1, le=64)] = 1

    @model_validator(mode="after")
    def _refs(self) -> SlackSinkConfig:
        _one_of(self.url_env, self.url_file, "url", required=True)
        return self


class CommandSinkConfig(_SinkBase):
    type: Literal["command"]
    command: tuple[str, ...]

    @field_validator("command")
    @classmethod
    def _command(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or not value[0]:
            raise ValueError(
                "command must be a non-empty list, e.g. ['/usr/bin/logger', '-t', 'gs']"
            )
        return value


class PythonSinkConfig(_SinkBase):
    type: Literal["python"]
    callable: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")]


_NATS_PART = r"[A-Za-z0-9_-]+"


def check_nats_url(url: str) -> str:
    """``tls://host:port`` anywhere, plain ``nats://`` only on loopback; no credentials."""
    parts = urlsplit(url)
    if parts.username or parts.password or parts.query or parts.path not in ("", "/"):
        raise ValueError(
            "url must be 'nats://HOST:PORT' or 'tls://HOST:PORT' without credentials or a "
            "path; give a token with token_env / token_file, or creds_file"
        )
    if parts.scheme == "tls" and parts.hostname:
        return url
    if parts.scheme == "nats" and is_loopback_host(parts.hostname):
        return url
    raise ValueError(
        "nats sink URLs must be tls://HOST:PORT (plain nats:// is allowed only on loopback: "
        "127.0.0.1 or localhost)"
    )


class NatsSinkConfig(_SinkBase):
    """Events on a NATS JetStream stream (``watcher/delivery/sinks/nats.py``)."""

    type: Literal["nats"]
    url: str = "nats://127.0.0.1:4222"
    subject: Annotated[str, Field(pattern=rf"^{_NATS_PART}(\.{_NATS_PART})*$")] = "gainsight"
    stream: Annotated[str, Field(pattern=rf"^{_NATS_PART}$", max_length=64)] = "GAINSIGHT"
    create_stream: bool = True
    token_env: str | None = None
    token_file: str | None = None
    creds_file: str | None = None
    ca_file: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_nats_url(value)

    @model_validator(mode="after")
    def _creds(self) -> NatsSinkConfig:
        _one_of(self.token_env, self.token_file, "token", required=False)
        if self.creds_file is not None and (self.token_env or self.token_file):
            raise ValueError("give either a token (token_env / token_file) or creds_file")
        if self.ca_file is not None and not self.url.startswith("tls://"):
            raise ValueError("ca_file is only for tls:// URLs")
        return self


SinkConfig = Annotated[
    WebhookSinkConfig | SlackSinkConfig | CommandSinkConfig | PythonSinkConfig | NatsSinkConfig,
    Field(discriminator="type"),
]


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
            if isinstance(sink, NatsSinkConfig):
                token = _secret(f"sinks.{name}.token", sink.token_env, sink.token_file)
                if token:
                    refs.append(token)
        return refs


def sink_url_ref(name: str, sink: WebhookSinkConfig | SlackSinkConfig) -> SecretRef | None:
    return _secret(f"sinks.{name}.url", sink.url_env, sink.url_file)


def sink_secret_ref(name: str, sink: WebhookSinkConfig) -> SecretRef | None:
    return _secret(f"sinks.{name}.secret", sink.secret_env, sink.secret_file)


def resolve_secret(
    ref: SecretRef,
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> str:
    """Read the secret ``ref`` points to. Errors name the setting, never the value.

    A relative ``*_file`` is looked up under ``$CREDENTIALS_DIRECTORY`` when that is
    set (systemd ``LoadCredential=``), else relative to ``base_dir``.
    """
    env = os.environ if environ is None else environ
    if ref.env is not None:
        value = env.get(ref.env)
        if not value:
            raise SecretError(
                f"{ref.setting}: environment variable {ref.env} is not set or empty; "
                f"export it before starting watcher"
            )
        return value
    assert ref.file is not None
    path = Path(os.path.expandvars(ref.file))
    if not path.is_absolute():
        creds = env.get("CREDENTIALS_DIRECTORY")
        if creds and (Path(creds) / path).exists():
            path = Path(creds) / path
        elif base_dir is not None:
            path = base_dir / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(
            f"{ref.setting}: cannot read file {str(path)!r} ({exc.strerror or 'unreadable'}); "
            "check the path and its permissions"
        ) from None
    if not value:
        raise SecretError(f"{ref.setting}: file {str(path)!r} is empty")
    return value


def format_validation_error(origin: str, exc: ValidationError) -> str:
    """One line per problem: ``origin: key.path: message``."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        path = _loc(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key; check the spelling against the config reference in README.md"
        elif err.get("type") == "missing":
            msg = "is required"
        lines.append(f"{origin}: {path or '(top level)'}: {msg}")
    return "\n".join(lines)


_SINK_TAGS = ("webhook", "slack", "command", "python", "nats")


def _loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part) in _SINK_TAGS and out.startswith("sinks"):
            continue  # discriminated-union tag pydantic inserts; not a key the user wrote
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_config(data: Mapping[str, Any], origin: str = DEFAULT_CONFIG) -> WatcherConfig:
    """Validate an already-parsed TOML mapping."""
    try:
        return WatcherConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(origin, exc)) from None


def load_config(path: str | Path) -> WatcherConfig:
    """Read and validate ``path``; raise :class:`ConfigError` saying what and where."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{p}: config file not found; pass --config PATH or set WATCHER_CONFIG"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text; save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    return parse_config(data, str(p))


def default_config_path(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("WATCHER_CONFIG") or DEFAULT_CONFIG
