"""The three kinds of poll (pure): the one definition the engine and the schedule share."""

from __future__ import annotations

from typing import Literal

Mode = Literal["full", "incremental", "delete_log"]
