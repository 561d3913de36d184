"""Reading ``watcher.toml``: one loader, every error naming the file and the key."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from watcher.config.explain import format_validation_error
from watcher.config.models import WatcherConfig
from watcher.errors import ConfigError

DEFAULT_CONFIG = "watcher.toml"


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
