"""``watcher discover [OBJECT] [--json]``: the tenant's objects, or one object's fields.

Reads Gainsight's Data Management metadata (see :mod:`watcher.gainsight.metadata`).
With OBJECT it also prints a ``[[sources]]`` block ready to paste into
``watcher.toml``; ``watcher check --connect`` accepts it as printed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "discover",
        help="list the tenant's objects, or one object's fields and a [[sources]] block",
        description=(
            "Without OBJECT: every object of the tenant (API name, label, type). With "
            "OBJECT: its fields (API name, label, data type, lookup target and the __gr. "
            "path that gives the label) and a [[sources]] block to paste into watcher.toml."
        ),
    )
    parser.add_argument(
        "object", nargs="?", metavar="OBJECT", help="an object's API name, e.g. call_to_action"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from watcher.cli import config_path
    from watcher.config import load_config

    path = Path(config_path(args)).resolve()
    config = load_config(path)
    return asyncio.run(_run(args, config, path.parent))


async def _run(args: argparse.Namespace, config: Any, base_dir: Path) -> int:
    from watcher.clock import SystemClock
    from watcher.gainsight.connect import open_client
    from watcher.gainsight.metadata import describe, list_objects, pick_goal_object

    async with open_client(config, clock=SystemClock(), base_dir=base_dir, max_retries=1) as client:
        objects = await list_objects(client)
        if args.object is None:
            _print_objects(objects, as_json=args.json)
            return 0
        fields = await describe(client, args.object)
    goal = pick_goal_object(objects)
    known = {o.name.lower(): o.name for o in objects}
    name = known.get(args.object.lower(), args.object)
    block = source_block(name, fields, is_goal=goal is not None and goal == name)
    if args.json:
        print(json.dumps({
            "object": name,
            "fields": [
                {"name": f.name, "label": f.label, "data_type": f.data_type,
                 "lookup": f.lookup, "label_path": f.label_path}
                for f in fields
            ],
            "source": block,
        }, indent=2))  # fmt: skip
        return 0
    rows = [(f.name, f.label, f.data_type, f.lookup or "", f.label_path or "") for f in fields]
    _table(("API name", "label", "data type", "lookup to", "label path"), rows)
    print(f"\n# paste into watcher.toml; then run `watcher check --connect`\n{block}")
    return 0


def _print_objects(objects: list[Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"name": o.name, "label": o.label, "type": o.type} for o in objects],
                         indent=2))  # fmt: skip
        return
    _table(("API name", "label", "type"), [(o.name, o.label, o.type) for o in objects])


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


_LABELLED_TARGETS = frozenset({"company", "gsuser", "person", "relationship"})
_SKIPPED_TYPES = frozenset({"RICHTEXT", "RICH_TEXT_AREA"})


def source_block(object_name: str, fields: list[Any], *, is_goal: bool = False) -> str:
    """A ``[[sources]]`` block for ``object_name`` (pure)."""
    names = [f.name for f in fields]
    key = "Gsid" if "Gsid" in names else next(
        (f.name for f in fields if f.data_type.upper() == "GSID"), names[0] if names else "Gsid"
    )  # fmt: skip
    modified = next((m for m in ("ModifiedDate", "LastModifiedDate") if m in names), None)
    select: list[str] = []
    for f in fields:
        if f.data_type.upper() in _SKIPPED_TYPES:
            continue
        select.append(f.name)
        if f.data_type.upper() == "PICKLIST" or (
            f.lookup and f.lookup.lower() in _LABELLED_TARGETS
        ):
            select.append(f"{f.name}__gr.Name")
    lower = object_name.lower()
    extra: list[str]
    if lower == "company":
        kind, extra = "company", []
    elif lower == "call_to_action":
        kind, extra = "cta", []
    elif is_goal:
        kind, extra = "goal", [f'object = "{object_name}"']
    else:
        kind, extra = "object", [f'object = "{object_name}"']
    name = {"company": "companies", "cta": "ctas", "goal": "goals"}.get(kind, lower)
    lines = ["[[sources]]", f'name = "{name}"', f'kind = "{kind}"', *extra]
    lines.append("select = [" + ", ".join(json.dumps(s) for s in select) + "]")
    if key != "Gsid":
        lines.append(f'key = "{key}"')
    if modified is not None:
        if modified != "ModifiedDate":
            lines.append(f'modified_field = "{modified}"')
        lines.append(f'ignore_fields = ["{modified}"]')
        lines.append('incremental = "*/5 * * * *"')
    lines.append('full_sweep = "0 */6 * * *"')
    lines.append('delete_log = "*/10 * * * *"')
    return "\n".join(lines)
