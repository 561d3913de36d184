"""Secrets: a model holds only *where* a secret is; :func:`resolve_secret` reads it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from watcher.config.base import _Model
from watcher.errors import SecretError


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
    if ref.file is None:
        raise SecretError(
            f"{ref.setting}: neither an environment variable nor a file is given; "
            "set the setting's *_env or *_file"
        )
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
