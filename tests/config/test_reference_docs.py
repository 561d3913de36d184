"""The README's configuration reference stays in step with the config models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from watcher.config import (
    CommandSinkConfig,
    GainsightConfig,
    HttpConfig,
    NatsSinkConfig,
    PythonSinkConfig,
    RulesConfig,
    SlackSinkConfig,
    SourceConfig,
    StoreConfig,
    WebhookSinkConfig,
)
from watcher.config.sinks import _SinkBase

README = Path(__file__).resolve().parents[2] / "README.md"


def reference_tables() -> dict[str, set[str]]:
    """Map each `### `[section]`` heading to the keys in its table's first column."""
    text = README.read_text(encoding="utf-8")
    reference = text.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, set[str]] = {}
    for block in reference.split("\n### ")[1:]:
        heading = re.match(r"`([^`]+)`", block)
        assert heading, block[:40]
        keys = set(re.findall(r"^\| `([a-z_]+)` \|", block, flags=re.MULTILINE))
        tables[heading.group(1)] = keys
    return tables


@pytest.mark.parametrize(
    ("section", "model"),
    [
        ("[gainsight]", GainsightConfig),
        ("[store]", StoreConfig),
        ("[http]", HttpConfig),
        ("[rules]", RulesConfig),
        ("[[sources]]", SourceConfig),
        ("[sinks.NAME]", _SinkBase),
    ],
)
def test_every_model_field_has_a_row_and_every_row_a_field(
    section: str, model: type[BaseModel]
) -> None:
    documented = reference_tables()[section]
    fields = set(model.model_fields)
    if model is _SinkBase:
        fields.add("type")
    assert documented == fields


@pytest.mark.parametrize(
    "model",
    [WebhookSinkConfig, SlackSinkConfig, CommandSinkConfig, PythonSinkConfig, NatsSinkConfig],
)
def test_every_sink_specific_key_is_described(model: type[BaseModel]) -> None:
    text = README.read_text(encoding="utf-8").split("### `[sinks.NAME]`", 1)[1]
    for field in set(model.model_fields) - set(_SinkBase.model_fields):
        assert f"`{field}`" in text, f"{model.__name__}.{field} is not in README"
