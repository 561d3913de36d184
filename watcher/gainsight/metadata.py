"""Gainsight's Data Management metadata reads: objects and their fields.

Routes (Gainsight's "Data Management APIs" article; the same calls appear in
several public connectors):

* ``GET /v1/meta/services/objects/list`` - every object of the tenant ("Lite API
  call" OMD). ``data`` is a list of objects.
* ``GET /v1/meta/services/objects/{Object}/describe?idd=true`` - one object's
  fields ("Describe OMD"). ``data`` is a list holding the object, whose
  ``fields`` list describes each field.

Attribute names inside those objects are not confirmed first-hand, so reading is
tolerant: an object's API name is ``objectName`` (or ``name``), its label
``label`` (or ``displayName``), its type ``objectType`` (or ``type``); a field's
API name is ``fieldName`` (or ``name``), with ``label``, ``dataType`` and, for
lookups, the target object in ``lookupDetail.lookupObjects[].objectName`` (or
``lookupObjects`` / ``lookupObject``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from watcher.errors import ApiError

if TYPE_CHECKING:
    from watcher.gainsight.client import GainsightClient

OBJECTS_PATH = "/v1/meta/services/objects/list"
DESCRIBE_PATH = "/v1/meta/services/objects/{object}/describe?idd=true"
GOAL_LABELS = ("customer goals", "customer goal", "goals", "goal")
GOAL_META = "goal_object"  # the store's tenant_meta name for the goals object


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    label: str
    type: str


@dataclass(frozen=True)
class FieldInfo:
    name: str
    label: str
    data_type: str
    lookup: str | None = None  # LOOKUP: the object it points at

    @property
    def label_path(self) -> str | None:
        """The ``__gr.`` path that gives a lookup's or picklist's label."""
        if self.lookup:
            return f"{self.name}__gr.Name"
        if self.data_type.upper() in ("PICKLIST", "DROPDOWN", "MULTISELECTDROPDOWNLIST"):
            return f"{self.name}__gr.Name"
        return None


def _text(row: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = row.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _lookup(row: Mapping[str, Any]) -> str | None:
    detail = row.get("lookupDetail")
    candidates: list[Any] = []
    if isinstance(detail, Mapping):
        candidates.extend(detail.get("lookupObjects") or [])
        candidates.append(detail)
    candidates.extend(row.get("lookupObjects") or [])
    if isinstance(row.get("lookupObject"), str):
        return str(row["lookupObject"])
    for item in candidates:
        if isinstance(item, Mapping):
            name = _text(item, "objectName", "lookupObjectName")
            if name:
                return name
    return None


async def list_objects(client: GainsightClient) -> list[ObjectInfo]:
    rows = await client.get_meta(OBJECTS_PATH)
    out = []
    for row in rows:
        name = _text(row, "objectName", "name")
        if name:
            out.append(ObjectInfo(name, _text(row, "label", "displayName") or name,
                                  _text(row, "objectType", "type") or "-"))  # fmt: skip
    return out


async def describe(client: GainsightClient, object_name: str) -> list[FieldInfo]:
    rows = await client.get_meta(DESCRIBE_PATH.format(object=quote(object_name, safe="")))
    if not rows:
        raise ApiError(f"describe {object_name}: Gainsight returned no object")
    fields = rows[0].get("fields")
    if not isinstance(fields, list):
        raise ApiError(f"describe {object_name}: the reply has no 'fields' list")
    out = []
    for row in fields:
        if not isinstance(row, Mapping):
            continue
        name = _text(row, "fieldName", "name")
        if name:
            label = _text(row, "label", "displayName") or name
            out.append(FieldInfo(name, label, _text(row, "dataType", "type") or "-", _lookup(row)))
    return out


def pick_goal_object(objects: list[ObjectInfo]) -> str | None:
    """The Customer Goals object: the first whose label (then API name) says so."""
    for wanted in GOAL_LABELS:
        for obj in objects:
            if obj.label.strip().lower() == wanted:
                return obj.name
    return None


async def find_goal_object(client: GainsightClient) -> str:
    objects = await list_objects(client)
    name = pick_goal_object(objects)
    if name is None:
        raise ApiError(
            "the tenant's object list has no Customer Goals object (no object labelled "
            "'Customer Goals'); set object = '<API name>' on the goal source "
            "(`watcher discover` lists the objects)"
        )
    return name
