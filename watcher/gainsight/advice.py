"""What an admin can change when Gainsight refuses a source's request (pure).

Chosen from Gainsight's ``errorCode`` and its own ``errorDesc``; names the setting as
written in ``watcher.toml`` (``sources['companies'].select``).
"""

from __future__ import annotations

from watcher.config import SourceConfig
from watcher.errors import SourceError
from watcher.gainsight.query import style_of


def advice_for(source: SourceConfig, exc: SourceError) -> str | None:
    """What the admin can change, from Gainsight's code and description."""
    where = f"sources[{source.name!r}]"
    code = exc.error_code or ""
    desc = exc.desc or ""
    lower = desc.lower()
    if "select" in lower and code in ("GSOBJ_1008", "COCKPIT_5101", "GSOBJ_1002", ""):
        _, _, named = desc.rpartition(" - ")
        fields = named.strip() if named.strip() else "a field"
        return (
            f"{fields} in {where}.select is not a field of {source.object_name} in this "
            f"tenant (deleted or renamed?): remove or fix it in select; `watcher discover "
            f"{source.object_name}` lists the fields"
        )
    if code == "COCKPIT_5102" or ("operator" in lower and style_of(source) == "cockpit"):
        return (
            f"the Cockpit list refused a filter; remove api = 'cockpit' from {where} to read "
            "CTAs through the query route"
        )
    if code == "OBJECT_NOT_FOUND":
        return f"set {where}.object to an object this tenant has (`watcher discover` lists them)"
    if code in ("GS_APIG_1000", "GSOBJ_1023"):
        return f"check gainsight.base_url and {where}.path"
    if code in ("GSOBJ_1005", "GSOBJ_1006"):
        return f"check {where}.modified_field (it must be a date field)"
    if code.startswith(("GSOBJ_", "COCKPIT_")):
        return f"check {where} (select, key, modified_field, object)"
    return None
