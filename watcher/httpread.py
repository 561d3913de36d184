"""Bounded HTTP exchanges: a cap on the reply body, one deadline for the whole exchange.

httpx's timeouts apply per read, so a reply trickling a byte a second never times
out, and its body is read whole into memory (decompressed: a small gzip bomb expands
to gigabytes). :func:`bounded_post` streams the reply instead:

- the body is decompressed here (gzip, deflate) a bounded piece at a time and read
  up to ``max_bytes``: past it, :class:`ReplyTooLargeError` - or, with
  ``truncate=True`` (sinks, whose reply is only read for an error message), the
  rest is dropped unread (and a body that cannot be decoded is dropped too);
- the whole exchange, connect to last byte, must finish within ``deadline_s``, else
  ``httpx.ReadTimeout`` (which callers already treat as a timeout);
- it sends ``User-Agent: gainsight-watcher/VERSION`` and the given ``Accept-Encoding``.

The reply comes back as an ordinary, already read ``httpx.Response``.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Mapping

import httpx

from watcher import __version__

USER_AGENT = f"gainsight-watcher/{__version__}"
#: The largest Gainsight reply read (decompressed); a page of records is far smaller.
MAX_REPLY_BYTES = 64 * 2**20
_STEP = 2**20
_DROPPED = ("content-encoding", "content-length", "transfer-encoding")


class ReplyTooLargeError(httpx.DecodingError):
    """The reply body is larger than the caller accepts."""


def _decompressor(encoding: str) -> zlib._Decompress | None:
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return zlib.decompressobj()
    raise httpx.DecodingError(f"unsupported content-encoding {name!r}")


class _Body:
    """Collects decoded bytes up to ``limit`` (one byte more tells it overflowed).

    ``lenient``: a body that cannot be decoded is dropped (``broken``), not an error.
    """

    def __init__(self, encoding: str, limit: int, lenient: bool) -> None:
        self._lenient = lenient
        self._limit = limit
        self._parts: list[bytes] = []
        self.size = 0
        self.broken = False
        try:
            self._inflate = _decompressor(encoding)
        except httpx.DecodingError:
            if not lenient:
                raise
            self._inflate, self.broken = None, True

    @property
    def full(self) -> bool:
        return self.size > self._limit

    def feed(self, raw: bytes) -> None:
        if self._inflate is None:
            self._keep(raw)
            return
        data = raw
        try:
            while data and not self.full:
                step = min(self._limit + 1 - self.size, _STEP)  # small steps: no big buffers
                self._keep(self._inflate.decompress(data, step))
                data = self._inflate.unconsumed_tail
        except zlib.error as exc:
            if not self._lenient:
                raise httpx.DecodingError(
                    f"reply body is not valid compressed data ({exc})"
                ) from None
            self.broken = True

    def _keep(self, data: bytes) -> None:
        room = self._limit + 1 - self.size
        self._parts.append(data[:room])
        self.size += len(data)

    def bytes(self) -> bytes:
        return b"" if self.broken else b"".join(self._parts)[: self._limit]


async def _already(response: httpx.Response) -> AsyncIterator[bytes]:
    yield response.content


async def bounded_post(
    http: httpx.AsyncClient,
    url: str,
    *,
    content: bytes | str | None,
    headers: Mapping[str, str],
    timeout: httpx.Timeout | float,  # noqa: ASYNC109 - httpx's per-operation timeouts
    deadline_s: float,
    max_bytes: int,
    truncate: bool = False,
    accept_encoding: str = "identity",
    method: str = "POST",
) -> httpx.Response:
    """Send (POST by default) and read the reply within ``deadline_s`` and ``max_bytes``."""
    sent = {"User-Agent": USER_AGENT, "Accept-Encoding": accept_encoding, **headers}
    request = http.build_request(method, url, content=content, headers=sent, timeout=timeout)
    try:
        async with asyncio.timeout(deadline_s):
            response = await http.send(request, stream=True)
            try:
                if response.is_stream_consumed:  # in-memory transports: already decoded
                    body, chunks = _Body("", max_bytes, truncate), _already(response)
                else:
                    encoding = response.headers.get("content-encoding", "")
                    body, chunks = _Body(encoding, max_bytes, truncate), response.aiter_raw()
                async for chunk in chunks:
                    body.feed(chunk)
                    if body.full or body.broken:
                        if truncate:
                            break
                        raise ReplyTooLargeError(
                            f"reply body larger than {max_bytes} bytes", request=request
                        )
            finally:
                await response.aclose()
    except TimeoutError:
        raise httpx.ReadTimeout(
            f"no complete reply within {deadline_s:g}s", request=request
        ) from None
    kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _DROPPED]
    return httpx.Response(
        response.status_code,
        headers=kept,
        content=body.bytes(),
        request=request,
        extensions={"http_version": response.extensions.get("http_version", b"HTTP/1.1")},
    )
