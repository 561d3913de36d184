"""NATS JetStream sink: each event on ``<subject>.<source>.<change>``, acknowledged by the stream.

- The body is the CloudEvent JSON as stored; headers ``Nats-Msg-Id`` (the event id:
  JetStream drops a repeat inside the stream's duplicate window) and
  ``Content-Type: application/cloudevents+json``.
- A delivery succeeds only on the stream's publish acknowledgement. No answer, a lost
  connection or a stream that is not there yet is retried on the sink's schedule; a
  server that refuses the credentials or the message is reported as such.
- The stream is created when missing (subjects ``<subject>.>``, file storage) unless
  ``create_stream = false``; then it must exist.
- One connection, opened on the first send and opened again after it is lost. The
  client's own reconnect is off: a publish is never buffered behind our back, so the
  dispatcher's retry is the only resend (and it carries the same ``Nats-Msg-Id``).

Errors never carry the token or the credentials file's content.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import StorageType

from watcher.delivery.base import Item, Preview, SendResult
from watcher.errors import PermanentDispatchError, RetryableDispatchError

CONTENT_TYPE = "application/cloudevents+json"
CHANGES = frozenset({"created", "updated", "deleted"})


def subject_for(prefix: str, event: Mapping[str, Any]) -> str:
    """``<prefix>.<source>.<change>``; a dot in a source name becomes ``_`` (one token)."""
    raw = event.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    source = str(data.get("source") or str(event.get("source", "")).rsplit("/", 1)[-1])
    change = str(data.get("change") or str(event.get("type", "")).rsplit(".", 1)[-1])
    if change not in CHANGES:
        change = "other"
    token = "".join(c if c.isalnum() or c in "_-" else "_" for c in source) or "_"
    return f"{prefix}.{token}.{change}"


@dataclass(frozen=True)
class NatsAuth:
    """What the connection authenticates with (at most one of the two)."""

    token: str | None = None
    creds_file: Path | None = None
    ca_file: Path | None = None


class NatsSink:
    type = "nats"
    max_batch = 1

    def __init__(
        self,
        name: str,
        *,
        url: str,
        subject: str,
        stream: str,
        create_stream: bool = True,
        auth: NatsAuth | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.url = url
        self.subject = subject
        self.stream = stream
        self.create_stream = create_stream
        self._auth = auth or NatsAuth()
        self._timeout = timeout_s
        self._nc: Client | None = None
        self._lock = asyncio.Lock()
        self._last_error: Exception | None = None
        self._where = f"nats sink {name!r}"

    def request(self, item: Item) -> tuple[str, dict[str, str], bytes]:
        """Subject, headers and body for ``item``."""
        headers = {"Nats-Msg-Id": item.event_id, "Content-Type": CONTENT_TYPE}
        return subject_for(self.subject, item.event), headers, item.body.encode("utf-8")

    def preview(self, items: Sequence[Item]) -> Preview:
        payloads = []
        for item in items:
            subject, headers, _ = self.request(item)
            payloads.append(
                {"stream": self.stream, "subject": subject, "headers": headers, "body": item.event}
            )
        return Preview(self.name, self.type, payloads)

    async def send(self, items: Sequence[Item]) -> SendResult:
        (item,) = items
        subject, headers, body = self.request(item)
        nc = await self._connection()
        js = nc.jetstream(timeout=self._timeout)
        try:
            ack = await js.publish(subject, body, headers=headers, timeout=self._timeout)
        except nats.js.errors.NoStreamResponseError:
            await self._drop()  # the next attempt connects again and checks the stream
            raise RetryableDispatchError(
                f"{self._where}: no stream takes subject {subject!r} (is stream "
                f"{self.stream!r} there, with subjects '{self.subject}.>'?); will retry"
            ) from None
        except nats.js.errors.APIError as exc:
            raise self._api_error(exc) from None
        except nats.errors.MaxPayloadError:
            raise PermanentDispatchError(
                f"{self._where}: the event ({len(body)} bytes) is larger than the server's "
                "max_payload; raise max_payload on the NATS server, then run "
                "'watcher deliveries retry --dead'"
            ) from None
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            await self._drop()
            raise RetryableDispatchError(
                f"{self._where}: no acknowledgement from the stream ({type(exc).__name__}); "
                "will retry"
            ) from None
        if ack.stream != self.stream:
            raise PermanentDispatchError(
                f"{self._where}: subject {subject!r} is stored by stream {ack.stream!r}, not "
                f"{self.stream!r}; give the sink that stream, or change its subject"
            )
        return SendResult(messages=1)

    def _api_error(self, exc: nats.js.errors.APIError) -> Exception:
        code = exc.code or 0
        what = f"{self._where}: the stream refused the message ({code} {exc.description or ''})"
        if code >= 500 or code in (408, 429, 503):
            return RetryableDispatchError(f"{what}; will retry")
        return PermanentDispatchError(
            f"{what}; fix the stream's settings then run 'watcher deliveries retry --dead'"
        )

    async def _connection(self) -> Client:
        async with self._lock:
            if self._nc is not None and self._nc.is_connected:
                return self._nc
            await self._drop()
            nc = await self._connect()
            try:
                await self._ensure_stream(nc)
            except BaseException:
                await _close(nc)
                raise
            self._nc = nc
            return nc

    async def _open(self) -> Client:
        options: dict[str, Any] = {
            "allow_reconnect": False,
            "connect_timeout": max(1, round(self._timeout)),
            # One retry at once, then NoServersError (0 would mean "for ever").
            "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0,
            "error_cb": self._note_error,
            "disconnected_cb": _quiet_none,
            "closed_cb": _quiet_none,
            "name": f"gainsight-watcher {self.name}",
        }
        if self._auth.token is not None:
            options["token"] = self._auth.token
        if self._auth.creds_file is not None:
            options["user_credentials"] = str(self._auth.creds_file)
        if self.url.startswith("tls://"):
            ctx = ssl.create_default_context(
                cafile=str(self._auth.ca_file) if self._auth.ca_file else None
            )
            options["tls"] = ctx
        self._last_error = None
        nc = Client()
        try:
            await asyncio.wait_for(nc.connect(self.url, **options), 3 * self._timeout)
        except BaseException:
            # the client leaves a failed attempt's socket open; close it here
            await _close(nc)
            raise
        return nc

    async def _connect(self) -> Client:
        try:
            return await self._open()
        except nats.errors.NoServersError:
            if _is_auth(self._last_error):
                raise self._refused() from None
            kind = type(self._last_error or TimeoutError()).__name__
            raise RetryableDispatchError(
                f"{self._where}: cannot connect to the NATS server ({kind}); will retry"
            ) from None
        except nats.errors.AuthorizationError:
            raise self._refused() from None
        except (nats.errors.Error, OSError, TimeoutError, ssl.SSLError) as exc:
            if _is_auth(exc) or _is_auth(self._last_error):
                raise self._refused() from None
            raise RetryableDispatchError(
                f"{self._where}: cannot connect to the NATS server ({type(exc).__name__}); "
                "will retry"
            ) from None

    def _refused(self) -> RetryableDispatchError:
        return RetryableDispatchError(
            f"{self._where}: the server refused the credentials; check token_env / "
            "token_file / creds_file (deliveries are retried on the sink's schedule)"
        )

    async def _note_error(self, exc: Exception) -> None:
        """The client reports connection errors here; the sink words them itself."""
        self._last_error = exc

    async def _ensure_stream(self, nc: Client) -> None:
        js = nc.jetstream(timeout=self._timeout)
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            if not self.create_stream:
                raise RetryableDispatchError(
                    f"{self._where}: stream {self.stream!r} does not exist and create_stream "
                    f"= false; create it (subjects '{self.subject}.>') or set create_stream "
                    "= true; will retry"
                ) from None
        except nats.js.errors.ServiceUnavailableError:
            raise RetryableDispatchError(
                f"{self._where}: JetStream is not enabled on the server (start it with -js); "
                "will retry"
            ) from None
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            raise RetryableDispatchError(
                f"{self._where}: cannot read stream {self.stream!r} ({type(exc).__name__}); "
                "will retry"
            ) from None
        else:
            return
        try:
            await js.add_stream(
                name=self.stream, subjects=[f"{self.subject}.>"], storage=StorageType.FILE
            )
        except nats.js.errors.APIError as exc:
            raise PermanentDispatchError(
                f"{self._where}: cannot create stream {self.stream!r} ({exc.code} "
                f"{exc.description or ''}); create it yourself with subjects "
                f"'{self.subject}.>', then run 'watcher deliveries retry --dead'"
            ) from None
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            raise RetryableDispatchError(
                f"{self._where}: cannot create stream {self.stream!r} "
                f"({type(exc).__name__}); will retry"
            ) from None

    async def _drop(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None:
            await _close(nc)

    async def aclose(self) -> None:
        async with self._lock:
            await self._drop()


async def _close(nc: Client) -> None:
    try:
        await asyncio.wait_for(nc.close(), 5.0)
    except (nats.errors.Error, OSError, TimeoutError):
        return


def _is_auth(exc: Exception | None) -> bool:
    """The server's ``-ERR 'Authorization Violation'`` reaches us as a plain client error."""
    if isinstance(exc, nats.errors.AuthorizationError):
        return True
    return isinstance(exc, nats.errors.Error) and "authorization" in str(exc).lower()


async def _quiet_none() -> None:
    """The sink reports failures itself; the client's own log lines would repeat them."""
