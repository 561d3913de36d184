"""Every rule snippet in docs/rules.md and the README's cookbook loads: a documented
example can never drift into an error or a rule that never matches."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.rules.test_loader import config, write
from watcher.cli.demo import dump_toml
from watcher.rules.loader import load_rules

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```toml\n(.*?)```", re.DOTALL)
STATEMENT = re.compile(r"^(?=[a-z_]+ = )", re.MULTILINE)


def snippets(doc: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, rule table) for each example: whole ``[[rules]]`` blocks as written, and
    each ``when = ...`` of a fragment block with the block's other keys."""
    out: list[tuple[str, dict[str, Any]]] = []
    text = (ROOT / doc).read_text()
    for number, block in enumerate(BLOCK.findall(text)):
        if "[[sources]]" in block or "[sinks." in block or "[gainsight]" in block:
            continue  # config examples, not rules
        if "[[rules]]" in block:
            for rule in tomllib.loads(block)["rules"]:
                out.append((f"{doc} block {number} {rule['name']}", rule))
            continue
        parts = [tomllib.loads(p) for p in STATEMENT.split(block) if p.strip()]
        parts = [p for p in parts if p]
        common = {k: v for p in parts for k, v in p.items() if k != "when"}
        for index, part in enumerate(p for p in parts if "when" in p):
            rule = {"name": f"doc-{number}-{index}", "sources": ["companies"], "sinks": ["crm"]}
            out.append((f"{doc} block {number} when #{index}", {**rule, **common, **part}))
    return out


EXAMPLES = snippets("docs/rules.md") + snippets("README.md")


def test_the_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 15


@pytest.mark.parametrize(("label", "rule"), EXAMPLES, ids=[label for label, _ in EXAMPLES])
def test_documented_rule_examples_load_without_warnings(
    tmp_path: Path, label: str, rule: dict[str, Any]
) -> None:
    write(tmp_path, "doc.toml", dump_toml({"rules": [rule]}))
    ruleset = load_rules(config(), base_dir=tmp_path)
    assert len(ruleset) == 1, label
    assert ruleset.warnings == (), label
