"""One exception tree for everything gainsight-watcher raises on purpose.

    WatcherError                      base: anything we raise deliberately
    ├── ConfigError                   watcher.toml or a rule file is invalid (exit 2)
    │   └── SecretError               a *_env / *_file secret is unset or unreadable
    ├── SourceError                   talking to Gainsight failed
    │   ├── AuthError                 401/403: the access key is wrong (never retried)
    │   ├── RateLimitedError          429 after our retries were used up
    │   ├── ApiError                  result:false / 4xx with errorCode and requestId
    │   ├── TransientError            5xx, timeout, connection error after retries
    │   └── MalformedResponseError    not JSON, not the envelope, truncated page
    ├── StoreError                    SQLite could not be opened, written or migrated
    │   ├── StoreLockedError          another daemon holds the database
    │   └── StoreFullError            the disk is full (SQLITE_FULL)
    ├── PollError                     a poll could not complete (wraps the above)
    └── DispatchError                 a delivery attempt failed
        ├── RetryableDispatchError    try again later (optionally after retry_after)
        └── PermanentDispatchError    retrying cannot help: dead-letter now

Lower-level errors (httpx, json, sqlite3, OSError) are translated at the boundary
with ``raise ... from exc``; none leak to callers. Messages say what was wrong,
where, and what to do, and never contain a secret.
"""

from __future__ import annotations


class WatcherError(Exception):
    """Base of every error gainsight-watcher raises deliberately."""


class ConfigError(WatcherError):
    """Configuration or rule file is invalid; the CLI exits 2."""


class SecretError(ConfigError):
    """A secret reference (``*_env`` / ``*_file``) could not be resolved."""


class SourceError(WatcherError):
    """A Gainsight API call failed."""

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        request_id: str | None = None,
        status: int | None = None,
        desc: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.request_id = request_id
        self.status = status
        self.desc = desc  # Gainsight's errorDesc, redacted and bounded (None if not given)


class AuthError(SourceError):
    """The access key was rejected (401/403). Never retried."""


class RateLimitedError(SourceError):
    """HTTP 429 persisted after the retry budget was spent."""


class ApiError(SourceError):
    """Gainsight answered ``result: false`` or a non-retryable 4xx."""


class TransientError(SourceError):
    """5xx, timeout or connection failure that outlived our retries."""


class MalformedResponseError(SourceError):
    """The reply was not the documented envelope (bad JSON, wrong shape, truncated)."""


class StoreError(WatcherError):
    """The SQLite store could not be used."""


class StoreLockedError(StoreError):
    """Another process holds the daemon lock or a write lock on the database."""


class StoreFullError(StoreError):
    """The disk is full; nothing was committed."""


class PollError(WatcherError):
    """A poll could not complete."""


class DispatchError(WatcherError):
    """A delivery attempt failed."""


class RetryableDispatchError(DispatchError):
    """The attempt failed but a later one may succeed."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDispatchError(DispatchError):
    """Retrying cannot help (e.g. Slack ``channel_not_found``): dead-letter now."""


class SinkGoneError(PermanentDispatchError):
    """The receiver answered 410 Gone: the sink is paused until resumed."""
