"""URL policy: https everywhere, plain http (or nats) only on loopback."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


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
