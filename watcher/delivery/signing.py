"""Standard Webhooks signatures: ``v1,`` + base64 HMAC-SHA256 over ``id.timestamp.body``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from watcher.errors import ConfigError

PREFIX = "whsec_"


def secret_key(secret: str, setting: str = "secret") -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (the prefix is optional)."""
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"{setting}: not a Standard Webhooks secret; it must be 'whsec_' followed by "
            'base64 (generate one with: python -c "import base64,os;'
            "print('whsec_'+base64.b64encode(os.urandom(32)).decode())\")"
        ) from None
    if len(key) < 16:
        raise ConfigError(f"{setting}: the secret is too short; use at least 16 random bytes")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value."""
    payload = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, payload, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")
