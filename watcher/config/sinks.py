"""The ``[sinks.<name>]`` sections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from watcher.config.base import _check_duration, _Model
from watcher.config.secrets import SecretRef, _one_of
from watcher.config.urls import _NATS_PART, check_nats_url, check_sink_url
from watcher.durations import parse_duration

DEFAULT_RETRY_SCHEDULE = ("0s", "5s", "5m", "30m", "2h", "5h", "10h", "10h")


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
