"""Parse human durations such as ``"10m"``, ``"1h30m"``, ``"45s"``, ``"2d"`` (pure)."""

from __future__ import annotations

import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Return seconds for ``text``; raise ``ValueError`` saying what is accepted."""
    cleaned = text.strip().replace(" ", "")
    if not cleaned:
        raise ValueError("duration is empty; use e.g. '30s', '10m', '1h', '2d'")
    pos = 0
    total = 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(cleaned):
        raise ValueError(
            f"duration {text!r} is not understood; use a number and a unit "
            "(ms, s, m, h, d), e.g. '30s', '10m', '1h30m'"
        )
    return total


def format_duration(seconds: float) -> str:
    """Render seconds compactly (``3900`` -> ``"1h5m"``)."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    rest = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            count, rest = divmod(rest, size)
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
