"""``watcher.toml``: frozen pydantic models, one loader, secret resolution.

Loaded once, validated strictly (``extra="forbid"``: a misspelt key is an error).
Every error names the file, the key path and what to do. Secrets are never part
of the models: a model holds only *where* a secret is (``*_env`` or ``*_file``);
:func:`resolve_secret` reads it when it is needed.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
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
    #: The shortest value accepted (the feed token: a guessable one is no protection).
    min_length: int = 1


def _secret(
    setting: str, env: str | None, file: str | None, min_length: int = 1
) -> SecretRef | None:
    if env is None and file is None:
        return None
    return SecretRef(setting=setting, env=env, file=file, min_length=min_length)


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
        if self.key in self.ignore_fields:
            raise ValueError(f"the key field {self.key!r} cannot be in ignore_fields")
        if (
            self.delete_log is not None
            and self.path is not None
            and not self.path.startswith("/v1/data/objects/query/")
            and not (self.kind == "cta" and self.path.rstrip("/") == "/v2/cockpit/cta/list")
        ):
            raise ValueError(
                f"delete_log: Gainsight has no delete feed for path {self.path!r}; remove "
                "delete_log (full sweeps still find deletes) or the path override"
            )
        return self

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
    def effective_api(self) -> Literal["query", "cockpit"]:
        """``cockpit`` only for a CTA source that asks for it; everything else is the
        documented MDA query route."""
        return self.api or "query"

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
    def effective_path(self) -> str:
        if self.path:
            return self.path
        if self.kind == "cta" and self.effective_api == "cockpit":
            return "/v2/cockpit/cta/list"
        return f"/v1/data/objects/query/{self.object_name}"

    @property
    def effective_paging(self) -> Literal["page", "offset"]:
        if self.paging:
            return self.paging
        if self.kind == "cta" and self.effective_api == "cockpit":
            return "page"
        return "page" if self.path and self.kind == "goal" else "offset"

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
    #: Secret headers: header name -> environment variable / file holding its value.
    headers_env: Mapping[str, str] = Field(default_factory=dict)
    headers_file: Mapping[str, str] = Field(default_factory=dict)

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
        names = [h.lower() for h in (*self.headers, *self.headers_env, *self.headers_file)]
        twice = sorted({h for h in names if names.count(h) > 1})
        if twice:
            raise ValueError(
                f"header(s) {', '.join(map(repr, twice))} given more than once across headers, "
                "headers_env and headers_file; give each header in one of them"
            )
        return self

    def header_refs(self, sink: str) -> dict[str, SecretRef]:
        """Secret headers: header name -> where its value is."""
        refs: dict[str, SecretRef] = {}
        for header, env in self.headers_env.items():
            refs[header] = SecretRef(setting=f"sinks.{sink}.headers_env.{header}", env=env)
        for header, file in self.headers_file.items():
            refs[header] = SecretRef(setting=f"sinks.{sink}.headers_file.{header}", file=file)
        return refs


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
        return _long_enough(ref, value, f"environment variable {ref.env}")
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
    return _long_enough(ref, value, f"file {str(path)!r}")


def _long_enough(ref: SecretRef, value: str, origin: str) -> str:
    if len(value) < ref.min_length:
        raise SecretError(
            f"{ref.setting}: the value in {origin} is too short (at least {ref.min_length} "
            "characters); generate one, e.g. with: openssl rand -hex 24"
        )
    return value


def _plain_choices(expected: str) -> str:
    """``"'a', 'b' or 'c'"`` -> ``"a, b, c"``."""
    return expected.replace(" or ", ", ").replace("'", "")


def _did_you_mean(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word.lower(), [k.lower() for k in known], n=1, cutoff=0.6)
    if not close:
        return ""
    original = next(k for k in known if k.lower() == close[0])
    return f" (did you mean {original}?)"


def explain_error(err: Mapping[str, Any], known: Iterable[str] = ()) -> str:
    """One pydantic error as an admin reads it: the bad value and what is allowed.

    Only values the admin wrote are echoed (config and rule files hold no secrets:
    those are given as ``*_env`` / ``*_file``), cut to 60 characters.
    """
    kind = str(err.get("type", ""))
    value = err.get("input")
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    ctx = err.get("ctx") or {}
    field = str(err["loc"][-1]) if err.get("loc") else "value"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        hint = _did_you_mean(field, list(known))
        return f"unknown key{hint or '; check the spelling against the reference in README.md'}"
    if kind == "missing":
        return "is required"
    if kind in ("literal_error", "enum"):
        return f"{shown} is not one of {_plain_choices(str(ctx.get('expected', '')))}"
    if kind == "too_short":
        return "must not be empty: give at least one entry"
    if kind in ("tuple_type", "list_type", "set_type"):
        example = f"[{shown}]" if isinstance(value, str) else "[...]"
        return f"must be a list, e.g. {example} (got {shown})"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{shown} is not a whole number"
    if kind in ("float_parsing", "float_type"):
        return f"{shown} is not a number"
    if kind in ("bool_parsing", "bool_type"):
        return f"{shown} is not true or false"
    if kind in ("string_type",):
        return f"must be text in quotes (got {shown})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a table (got {shown})"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{shown}: must be {msg.removeprefix('Input should be ')}"
    if kind == "string_pattern_mismatch":
        return (
            f"{shown} is not allowed here (letters, digits, '_', '.', '-'; "
            "start with a letter or digit)"
        )
    if kind == "string_too_long":
        return f"{shown} is too long ({msg.removeprefix('String should have ')})"
    if kind == "union_tag_invalid":
        tags = _plain_choices(str(ctx.get("expected_tags", "")))
        return f"{ctx.get('tag', shown)!r} is not one of {tags}"
    return msg


def _section_keys(loc: Sequence[Any]) -> list[str]:
    """The keys allowed where ``loc`` points (for did-you-mean)."""
    parent = [p for p in loc[:-1] if not isinstance(p, int)]
    if not parent:
        return list(WatcherConfig.model_fields)
    head = parent[0]
    if head == "sources":
        return list(SourceConfig.model_fields)
    if head == "sinks":
        names: set[str] = set()
        for model in (WebhookSinkConfig, SlackSinkConfig, CommandSinkConfig, PythonSinkConfig):
            names.update(model.model_fields)
        return sorted(names)
    sections: dict[str, type[BaseModel]] = {
        "gainsight": GainsightConfig,
        "store": StoreConfig,
        "http": HttpConfig,
        "rules": RulesConfig,
    }
    section = sections.get(str(head))
    return list(section.model_fields) if section else []


def format_validation_error(
    origin: str, exc: ValidationError, data: Mapping[str, Any] | None = None
) -> str:
    """One line per problem: ``origin: key.path: message``, keys as the admin wrote them
    (``sources['ctas'].fullsweep``), the bad value and what is allowed."""
    lines: list[str] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False, include_input=True):
        loc = tuple(err.get("loc", ()))
        path = _loc(loc, data)
        field = _field_of(path)
        if field in seen:
            continue  # one line per setting: the first problem is the one to fix
        seen.add(field)
        msg = explain_error(err, _section_keys(loc))
        lines.append(f"{origin}: {path or '(top level)'}: {msg}")
    return "\n".join(lines)


def _field_of(path: str) -> str:
    """``sources['x'].on[0]`` -> ``sources['x'].on`` (a setting, not its items)."""
    while path.endswith("]") and "[" in path:
        head, _, tail = path.rpartition("[")
        if tail[:-1].isdigit():
            path = head
        else:
            break
    return path


def _loc(loc: Sequence[Any], data: Mapping[str, Any] | None = None) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            if out == "sources" and i == 1 and data is not None:
                out += f"[{_source_name(data, part)}]"
            else:
                out += f"[{part}]"
        elif i == 2 and loc[0] == "sinks" and _is_sink_tag(data, loc[1], part):
            continue  # discriminated-union tag pydantic inserts; not a key the user wrote
        else:
            out += ("." if out else "") + str(part)
    return out


def _is_sink_tag(data: Mapping[str, Any] | None, name: Any, part: Any) -> bool:
    """``part`` is the ``type`` of sink ``name`` (pydantic puts it in the error path)."""
    sinks = data.get("sinks") if data is not None else None
    sink = sinks.get(name) if isinstance(sinks, Mapping) else None
    if isinstance(sink, Mapping) and "type" in sink:
        return bool(sink.get("type") == part)
    return str(part) in ("webhook", "slack", "command", "python", "nats")


def _source_name(data: Mapping[str, Any], index: int) -> str:
    sources = data.get("sources")
    if isinstance(sources, list) and index < len(sources) and isinstance(sources[index], Mapping):
        name = sources[index].get("name")
        if isinstance(name, str) and name:
            return repr(name)
    return str(index)


def parse_config(data: Mapping[str, Any], origin: str = DEFAULT_CONFIG) -> WatcherConfig:
    """Validate an already-parsed TOML mapping."""
    try:
        return WatcherConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(origin, exc, data)) from None


def load_config(path: str | Path) -> WatcherConfig:
    """Read and validate ``path``; raise :class:`ConfigError` saying what and where
    (the file named by its absolute path, whatever directory the command ran in)."""
    p = Path(os.path.abspath(path))
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
    except RecursionError:
        raise ConfigError(f"{p}: values nested too deeply to read; flatten the file") from None
    return parse_config(data, str(p))


def default_config_path(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("WATCHER_CONFIG") or DEFAULT_CONFIG
