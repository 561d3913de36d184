"""The simulated tenant's Data Management metadata: object list and describe.

Shapes follow what public connectors read (docs/gainsight-api.md): the list's
``data`` is a list of ``{objectName, label, objectType}``; describe's ``data`` is a
list holding one object whose ``fields`` are ``{fieldName, label, dataType}`` plus,
for lookups, ``lookupDetail.lookupObjects[{objectName}]``.
"""

from __future__ import annotations

from typing import Any

from watcher.sim.schema import COMPANY, CTA, DELETE_LOG, GOAL, SCHEMAS, TIMELINE, USER

LABELS = {
    COMPANY: ("Company", "STANDARD"),
    USER: ("User", "STANDARD"),
    CTA: ("Call To Action", "STANDARD"),
    GOAL: ("Customer Goals", "STANDARD"),
    DELETE_LOG: ("Record Delete Log", "SYSTEM"),
    TIMELINE: ("Activity Timeline", "STANDARD"),
}


def _label(name: str) -> str:
    out = ""
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out += " "
        out += ch
    return out.replace("Id", "").strip() if name.endswith("Id") and len(name) > 2 else out


def object_list() -> list[dict[str, Any]]:
    return [
        {"objectName": name, "label": LABELS[name][0], "objectType": LABELS[name][1]}
        for name in SCHEMAS
    ]


def describe_object(name: str) -> dict[str, Any]:
    schema = SCHEMAS[name]
    fields: list[dict[str, Any]] = []
    for fd in schema.fields:
        entry: dict[str, Any] = {"fieldName": fd.name, "label": _label(fd.name)}
        if fd.type == "PICKLIST":
            entry["dataType"] = "PICKLIST"
        elif fd.type == "LOOKUP":
            entry["dataType"] = "GSID"
            entry["lookupDetail"] = {"lookupObjects": [{"objectName": fd.target}]}
        else:
            entry["dataType"] = fd.type
        fields.append(entry)
    return {"objectName": name, "label": LABELS[name][0], "fields": fields}
