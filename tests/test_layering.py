"""The package layering: arrows point down, and no imports go round in a circle.

    base modules (errors, dates, durations, clock, httpread, httpserve, logging, config)
      <- core  <- store / gainsight / rules  <- poll / delivery  <- daemon  <- cli

``core`` imports nothing of watcher but ``dates`` and ``errors``; store, gainsight
and rules never import daemon, cli or delivery; poll and delivery never import
daemon or cli; daemon never imports cli. The harnesses (``testing``, ``sim``, and
``reliability`` while it is in the package) may import anything below cli, and
nothing on the production path imports them. Imports inside functions count (a
lazy import is still an arrow); imports under ``if TYPE_CHECKING:`` do not.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "watcher"

BASE = frozenset(
    {"errors", "dates", "durations", "clock", "httpread", "httpserve", "logging", "config"}
)
HARNESSES = frozenset({"testing", "sim", "reliability"})
FORBIDDEN: dict[str, frozenset[str]] = {
    "core": frozenset(),  # checked by CORE_MAY below: only dates and errors
    "store": frozenset({"daemon", "cli", "delivery", *HARNESSES}),
    "gainsight": frozenset({"daemon", "cli", "delivery", *HARNESSES}),
    "rules": frozenset({"daemon", "cli", "delivery", *HARNESSES}),
    "poll": frozenset({"daemon", "cli", *HARNESSES}),
    "delivery": frozenset({"daemon", "cli", *HARNESSES}),
    "daemon": frozenset({"cli", *HARNESSES}),
    "testing": frozenset({"cli"}),
    "sim": frozenset({"cli"}),
    "reliability": frozenset({"cli"}),
}
CORE_MAY = frozenset({"dates", "errors"})


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """``(imported name, line)`` for every watcher import, TYPE_CHECKING blocks left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(sub) for sub in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}:{node.lineno}: use absolute imports"
            yield node.module, node.lineno
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno


def _unit(module: str) -> str:
    """``watcher.store.db`` -> ``store``; ``watcher.errors`` -> ``errors``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "watcher"


def _module_graph() -> dict[str, set[tuple[str, int]]]:
    modules = _modules()
    graph: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for module, path in modules.items():
        for name, line in _imports(path):
            if not name.startswith("watcher"):
                continue
            target = name
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # A package's own __init__ is its parent, not a dependency of its parts.
            if target and target != module and not module.startswith(target + "."):
                graph[module].add((target, line))
    return graph


def test_arrows_point_down() -> None:
    """No package imports one above it (the message names file, line and import)."""
    modules = _modules()
    wrong = []
    for module, targets in _module_graph().items():
        src = _unit(module)
        for target, line in targets:
            dst = _unit(target)
            if dst in (src, "watcher"):
                continue
            bad = (
                (src == "core" and dst not in CORE_MAY)
                or (src in BASE and dst not in BASE)
                or dst in FORBIDDEN.get(src, frozenset())
            )
            if bad:
                wrong.append(f"{modules[module].relative_to(ROOT.parent)}:{line}: {src} -> {dst}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_packages() -> None:
    units: dict[str, set[str]] = defaultdict(set)
    for module, targets in _module_graph().items():
        for target, _ in targets:
            if _unit(target) not in (_unit(module), "watcher"):
                units[_unit(module)].add(_unit(target))
    assert _cycles(units) == []


def test_no_import_cycle_between_modules() -> None:
    """Lazy imports included: a cycle hidden in a function body is still a cycle."""
    graph = {m: {t for t, _ in targets} for m, targets in _module_graph().items()}
    assert _cycles(graph) == []


def test_the_checks_see_a_cycle_and_a_wrong_arrow() -> None:
    """The helpers themselves work: a made-up cycle is found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _unit("watcher.store.db") == "store"
    assert _unit("watcher.errors") == "errors"


#: Modules allowed an ``assert`` (none: run-time checks raise instead).
ASSERTS_ELSEWHERE: frozenset[str] = frozenset()


def test_no_assert_for_run_time_checks() -> None:
    """``python -O`` drops asserts: run-time checks raise a WatcherError instead, and
    type narrowing uses ``if ... is None: raise`` or ``assert_never``. The harnesses
    (``reliability``) are not part of the running daemon."""
    found = []
    for module, path in _modules().items():
        rel = str(path.relative_to(ROOT.parent))
        if _unit(module) == "reliability" or rel in ASSERTS_ELSEWHERE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{rel}:{n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.Assert)]
    assert found == []
