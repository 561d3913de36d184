"""Property-based fuzzing of rule files: a clear ConfigError or loaded rules, never a crash.

Random rule documents (drawn from the rule vocabulary, written as TOML) and random
bytes go through the real loader (``load_rules``). Every failure must be one
:class:`~watcher.errors.ConfigError` whose lines each name the file (and the rule,
when the problem is inside one). Rules that do load are then run through the real
matcher against a spread of events: matching never raises either.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.cli.demo import dump_toml
from watcher.config import WatcherConfig, parse_config
from watcher.errors import ConfigError
from watcher.rules.loader import load_rules
from watcher.rules.match import build_router, matching_rules
from watcher.rules.models import FIELD_OPERATORS

CONFIG: WatcherConfig = parse_config(
    {
        "gainsight": {"base_url": "http://127.0.0.1:8787", "access_key_env": "GS_KEY"},
        "rules": {"paths": ["rules"]},
        "sources": [
            {
                "name": "companies",
                "kind": "company",
                "select": ["Gsid", "Name", "Arr", "Stage", "RenewalDate", "ModifiedDate"],
            }
        ],
        "sinks": {"crm": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
    },
    "fuzz-watcher.toml",
)

RULE_KEYS = [
    "name", "description", "owner", "sources", "on", "when", "sinks", "throttle",
    "digest", "enabled", "typo",
]  # fmt: skip
COND_KEYS = ["field", *FIELD_OPERATORS, "any", "all", "not", "bogus"]
FIELDS = ["Arr", "Stage", "Name", "RenewalDate", "Missing", ""]

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.floats(allow_nan=False),  # TOML has nan, but nan != nan makes round trips noisy
    st.text(max_size=12),
    st.sampled_from(
        ["companies", "crm", "nowhere", "created", "updated", "deleted", "Arr", "Stage",
         "1h", "0s", "-5m", "soon", "key", "rule", "2026-12-01", "2026-13-45", "Launched"]
    ),
)  # fmt: skip


def _values(depth: int) -> st.SearchStrategy[Any]:
    if depth <= 0:
        return scalars
    return st.one_of(
        scalars,
        st.lists(scalars, max_size=3),
        st.dictionaries(st.sampled_from(COND_KEYS), _values(depth - 1), max_size=3),
    )


conditions: st.SearchStrategy[Any] = st.recursive(
    st.fixed_dictionaries(
        {"field": st.sampled_from(FIELDS)},
        optional={op: _values(1) for op in ("changed", "from", "to", "gt", "decreased_by_pct")},
    )
    | st.dictionaries(st.sampled_from(COND_KEYS), _values(1), max_size=3),
    lambda inner: (
        st.fixed_dictionaries({"any": st.lists(inner, max_size=3)})
        | st.fixed_dictionaries({"all": st.lists(inner, max_size=3)})
        | st.fixed_dictionaries({"not": inner})
    ),
    max_leaves=6,
)

rules = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["arr-drop", "x", "bad name", "", "dup"]) | st.text(max_size=70),
        "sources": st.lists(st.sampled_from(["companies", "ctas", ""]), max_size=2) | scalars,
        "on": st.lists(st.sampled_from(["created", "updated", "deleted", "moved"]), max_size=3)
        | scalars,
        "when": st.lists(conditions, max_size=3) | scalars,
        "sinks": st.lists(st.sampled_from(["crm", "slack", ""]), max_size=2) | scalars,
        "throttle": st.dictionaries(
            st.sampled_from(["per", "max", "window", "burst"]), scalars, max_size=3
        )
        | scalars,
        "digest": scalars | st.dictionaries(st.sampled_from(["window", "x"]), scalars),
        "enabled": scalars,
        "typo": scalars,
    },
)
# Near-valid rules: right shape, random operators and operands (most of them load).
valid_conditions: st.SearchStrategy[Any] = st.recursive(
    st.builds(
        lambda f, op, v: {"field": f, op: v},
        st.sampled_from(["Arr", "Stage", "Name", "RenewalDate"]),
        st.sampled_from(FIELD_OPERATORS),
        scalars | st.lists(scalars, min_size=1, max_size=3),
    ),
    lambda inner: (
        st.fixed_dictionaries({"any": st.lists(inner, min_size=1, max_size=3)})
        | st.fixed_dictionaries({"not": inner})
    ),
    max_leaves=4,
)
near_valid_rules = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["arr-drop", "stage.move", "r_1"]),
        "sources": st.just(["companies"]),
        "sinks": st.just(["crm"]),
        "when": st.lists(valid_conditions, max_size=3),
    },
    optional={
        "on": st.lists(st.sampled_from(["created", "updated", "deleted"]), min_size=1),
        "throttle": st.fixed_dictionaries(
            {"window": st.sampled_from(["1h", "10m", "0s"])},
            optional={"per": st.sampled_from(["key", "rule"]), "max": st.integers(0, 3)},
        ),
        "digest": st.sampled_from(["15m", "1h"]),
        "enabled": st.booleans(),
    },
)
documents = st.one_of(
    st.fixed_dictionaries({"rules": st.lists(rules, max_size=3)}),
    st.fixed_dictionaries({"rules": st.lists(near_valid_rules, max_size=3)}),
    st.dictionaries(st.sampled_from(["rules", "rule", "name"]), _values(2), max_size=2),
)

EVENTS: list[dict[str, Any]] = []
for change, before, after in [
    ("updated", {"Arr": 100.0, "Stage": "A"}, {"Arr": 80.0, "Stage": "B"}),
    ("updated", {"Arr": None, "Stage": None}, {"Arr": "text", "Stage": 3}),
    ("updated", {"Arr": 0, "RenewalDate": "2026-01-01T00:00:00.000Z"}, {"Arr": math.inf}),
    ("created", None, {"Arr": 5, "Name": "Acme", "RenewalDate": "garbage"}),
    ("deleted", {"Arr": -1.5, "Name": ["list"]}, None),
]:
    EVENTS.append(
        {
            "specversion": "1.0",
            "id": f"e-{len(EVENTS)}",
            "type": f"gainsight.company.{change}",
            "subject": "K1",
            "time": "2026-11-23T16:00:00.000Z",
            "data": {
                "source": "companies",
                "key": "K1",
                "change": change,
                "changes": {},
                "before": before,
                "after": after,
            },
        }
    )


def _load(folder: Path, text: bytes) -> Any:
    (folder / "rules").mkdir()
    path = folder / "rules" / "fuzz.toml"
    path.write_bytes(text)
    return path, load_rules(CONFIG, base_dir=folder)


def _assert_clear(exc: ConfigError, path: Path) -> None:
    lines = str(exc).splitlines()
    assert lines, "an empty error message"
    for line in lines:
        assert line.startswith(str(path)), f"error line does not name the file: {line!r}"
        assert "Traceback" not in line


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(documents)
def test_random_rule_documents_load_or_fail_with_a_clear_error(doc: dict[str, Any]) -> None:
    """Any TOML rule document loads, or fails with a ConfigError naming file and rule;
    loaded rules match events without raising."""
    text = dump_toml(doc).encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules" / "fuzz.toml"
        try:
            _, ruleset = _load(Path(tmp), text)
        except ConfigError as exc:
            _assert_clear(exc, path)
            for line in str(exc).splitlines():
                rest = line[len(str(path)) :]
                # a problem inside a rule names it by index (and by name when it has one)
                if "rules[" in rest:
                    assert rest.startswith(": rules["), line
            return
    router = build_router(ruleset)
    for event in EVENTS:
        matched = matching_rules(ruleset, event)
        routes = router(event)
        assert {r for r, _ in routes} <= {r.name for r in matched}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode()))
def test_random_rule_file_bytes_fail_with_a_clear_error(raw: bytes) -> None:
    """Garbage bytes, bad UTF-8 and bad TOML end in a ConfigError naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules" / "fuzz.toml"
        try:
            _load(Path(tmp), raw)
        except ConfigError as exc:
            _assert_clear(exc, path)


def test_a_known_bad_rule_names_file_rule_and_key() -> None:
    """Anchor for the properties above: the message names file, rule and key path."""
    doc = {"rules": [{"name": "arr-drop", "sources": ["companies"], "sinks": ["crm"],
                      "when": [{"field": "Arr", "decreased_by_pct": -3}]}]}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules" / "fuzz.toml"
        try:
            _load(Path(tmp), dump_toml(doc).encode())
        except ConfigError as exc:
            message = str(exc)
        else:
            raise AssertionError("a negative percentage was accepted")
    assert message.startswith(f"{path}: rules[0] ('arr-drop'): when[0].decreased_by_pct")
