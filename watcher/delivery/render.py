"""Readable text for change events: values, change lines, Slack Block Kit (pure).

Slack limits honoured: at most 50 blocks per message and 3000 characters per text
object; longer content is split across sections, then across messages.
"""

from __future__ import annotations

import string
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from watcher.dates import parse_iso

MAX_BLOCKS = 50
MAX_TEXT = 3000
MAX_VALUE = 300
CREATED_FIELDS = 8
LINK_FIELDS = frozenset({"key", "source", "object", "subject", "id", "type"})
OBJECT_LABELS = {"call_to_action": "CTA", "cs_goal": "Goal"}
_SYSTEM = frozenset({"CreatedDate", "ModifiedDate", "CreatedBy", "ModifiedBy", "Gsid"})


def escape(text: str) -> str:
    """Slack's control characters, in every text Slack renders (mrkdwn and the fallback).

    With ``& < >`` escaped, record data cannot form ``<!channel>`` mentions or
    ``<url|label>`` links of its own.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def format_value(value: Any) -> str:
    """A value as a person reads it: ``100,000``, ``23 Nov 2026``, ``(empty)``."""
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, str):
        parsed = parse_iso(value) if len(value) >= 10 and value[4:5] == "-" else None
        if parsed is not None:
            if (parsed.hour, parsed.minute, parsed.second, parsed.microsecond) == (0, 0, 0, 0):
                return f"{parsed.day} {parsed:%b %Y}"
            return f"{parsed.day} {parsed:%b %Y %H:%M} UTC"
        return _truncate(value, MAX_VALUE)
    if isinstance(value, list | tuple):
        return _truncate(", ".join(format_value(v) for v in value), MAX_VALUE)
    return _truncate(str(value), MAX_VALUE)


def _pct(old: Any, new: Any) -> str:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (old, new))
    if not numbers or old == 0:
        return ""
    pct = (float(new) - float(old)) / abs(float(old)) * 100
    sign = "+" if pct > 0 else "\u2212" if pct < 0 else "±"  # a real minus sign
    return f" ({sign}{abs(pct):.1f}%)"


def _data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = event.get("data")
    return data if isinstance(data, Mapping) else {}


def record_name(event: Mapping[str, Any]) -> str:
    data = _data(event)
    for side in ("after", "before"):
        rec = data.get(side)
        if isinstance(rec, Mapping) and rec.get("Name"):
            return str(rec["Name"])
    return str(data.get("key") or event.get("subject") or "record")


def label_fields(field: str) -> list[str]:
    """Fields that carry ``field``'s label: ``X__gr.Name``, and the ``XName`` form goals
    use (``Status`` -> ``StatusName``, ``StatusId`` -> ``StatusName``)."""
    out = [f"{field}__gr.Name", f"{field}Name"]
    if field.endswith("Id") and len(field) > 2:
        out.append(f"{field[:-2]}Name")
    return out


def _label(data: Mapping[str, Any], field: str, old: Any, new: Any) -> tuple[Any, Any]:
    """A lookup's or picklist's GSIDs shown by name when the record also carries a label
    field for it (``<field>__gr.Name``, ``StatusName``)."""
    before, after = data.get("before"), data.get("after")
    for label in label_fields(field):
        old_name = before.get(label) if isinstance(before, Mapping) else None
        new_name = after.get(label) if isinstance(after, Mapping) else None
        if old_name is not None or new_name is not None:
            return (old_name if old_name is not None else old), (
                new_name if new_name is not None else new
            )
    return old, new


def shown_changes(changes: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The changed fields worth a line: a label field (``X__gr.Name``, ``XName``) is shown
    as the label of ``X`` when ``X`` changed too, not again on its own."""
    labels = {lab for name in changes for lab in label_fields(str(name))}
    return [(str(name), entry) for name, entry in changes.items() if str(name) not in labels]


def held_text(data: Mapping[str, Any]) -> str:
    """What a ``gainsight.watcher.delete_held`` event says, in one plain sentence."""
    return (
        f"a sweep would delete {data.get('held')} of {data.get('total')} records "
        f"(limit {format_value(data.get('max_delete_fraction'))} of them); the deletes are "
        f"held, nothing was deleted. Apply them with: {data.get('apply_with')}"
    )


def change_lines(event: Mapping[str, Any]) -> list[str]:
    """One mrkdwn line per changed field (or the record's main fields when created)."""
    data = _data(event)
    change = data.get("change")
    changes = data.get("changes")
    lines = []
    if change == "delete_held":
        return [escape(held_text(data))]
    if change == "updated" and isinstance(changes, Mapping) and changes:
        for name, entry in shown_changes(changes):
            old = entry.get("old") if isinstance(entry, Mapping) else None
            new = entry.get("new") if isinstance(entry, Mapping) else None
            old, new = _label(data, name, old, new)
            lines.append(
                f"*{escape(str(name))}*: {escape(format_value(old))} → "
                f"{escape(format_value(new))}{_pct(old, new)}"
            )
        return lines
    side = "before" if change == "deleted" else "after"
    rec = data.get(side)
    if isinstance(rec, Mapping):
        shown = [(k, v) for k, v in rec.items() if k not in _SYSTEM and v not in (None, "")]
        for name, value in shown[:CREATED_FIELDS]:
            lines.append(f"*{escape(str(name))}*: {escape(format_value(value))}")
        if len(shown) > CREATED_FIELDS:
            lines.append(f"_…and {len(shown) - CREATED_FIELDS} more fields_")
    return lines


def link_for(template: str | None, event: Mapping[str, Any]) -> str | None:
    if not template:
        return None
    data = _data(event)
    values = {
        "key": data.get("key", ""),
        "source": data.get("source", ""),
        "object": data.get("object", ""),
        "subject": event.get("subject", ""),
        "id": event.get("id", ""),
        "type": event.get("type", ""),
    }
    # Percent-encoded: a value cannot end the link (``|``, ``>``) or change its target.
    return template.format_map({k: urllib.parse.quote(str(v), safe="") for k, v in values.items()})


def check_link_template(template: str) -> None:
    """Raise ValueError naming unknown placeholders."""
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    unknown = names - LINK_FIELDS
    if unknown:
        raise ValueError(
            f"link_template uses unknown placeholder(s) {sorted(unknown)}; "
            f"allowed: {sorted(LINK_FIELDS)}"
        )


def _headline(event: Mapping[str, Any], link: str | None) -> str:
    data = _data(event)
    name = escape(_truncate(record_name(event), 200))
    title = f"<{link}|{name}>" if link else name
    obj = str(data.get("object") or data.get("source") or "record")
    what = f"{OBJECT_LABELS.get(obj, obj)} {data.get('change', '')}"
    return f"*{title}* · {escape(what.strip())}"


def _sections(text: str) -> list[dict[str, Any]]:
    """Section blocks for ``text``, split on lines to stay within MAX_TEXT each."""
    chunks: list[str] = []
    current = ""
    for raw in text.split("\n"):
        line = _truncate(raw, MAX_TEXT)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > MAX_TEXT:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current:
        chunks.append(current)
    return [{"type": "section", "text": {"type": "mrkdwn", "text": c}} for c in chunks]


def _context(event: Mapping[str, Any], rule: str) -> dict[str, Any]:
    data = _data(event)
    when = escape(format_value(event.get("time"))) if event.get("time") else ""
    parts = [f"rule `{escape(rule)}`", escape(str(data.get("source", ""))), when]
    text = " · ".join(p for p in parts if p)
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _truncate(text, 3000)}]}


def event_blocks(
    event: Mapping[str, Any], rule: str, link: str | None, *, compact: bool = False
) -> list[dict[str, Any]]:
    """Section(s) for one event, then a context line (``compact``: folded into the section)."""
    lines = [_headline(event, link), *change_lines(event)]
    context = _context(event, rule)
    if compact:
        lines.append(f"_{context['elements'][0]['text']}_")
        return _sections("\n".join(lines))
    return [*_sections("\n".join(lines)), context]


def fallback_text(events: Sequence[tuple[Mapping[str, Any], str]]) -> str:
    """Plain text for notifications and clients without Block Kit, escaped: Slack
    parses the fallback for mentions and links too."""
    return _truncate(escape(_plain_text(events)), MAX_TEXT)


def _plain_text(events: Sequence[tuple[Mapping[str, Any], str]]) -> str:
    if len(events) == 1:
        event = events[0][0]
        data = _data(event)
        changes = data.get("changes")
        if data.get("change") == "updated" and isinstance(changes, Mapping) and changes:
            parts = []
            shown = shown_changes(changes)
            for name, entry in shown[:3]:
                old = entry.get("old") if isinstance(entry, Mapping) else None
                new = entry.get("new") if isinstance(entry, Mapping) else None
                old, new = _label(data, name, old, new)
                parts.append(f"{name} {format_value(old)} → {format_value(new)}")
            more = f" (+{len(shown) - 3} more)" if len(shown) > 3 else ""
            text = f"{record_name(event)}: {'; '.join(parts)}{more}"
        elif data.get("change") == "delete_held":
            text = f"{data.get('source')}: {held_text(data)}"
        else:
            obj = str(data.get("object", "record"))
            text = f"{record_name(event)}: {OBJECT_LABELS.get(obj, obj)} {data.get('change', '')}"
        return text
    names = ", ".join(record_name(e) for e, _ in events[:10])
    more = f" and {len(events) - 10} more" if len(events) > 10 else ""
    return f"{len(events)} Gainsight changes: {names}{more}"


def slack_messages(
    events: Sequence[tuple[Mapping[str, Any], str]], link_template: str | None = None
) -> list[dict[str, Any]]:
    """Block Kit payloads for ``(event, rule)`` pairs: one message, or several when long.

    A burst (several events) becomes one digest message with a header section; every
    message keeps within 50 blocks and 3000 characters per text.
    """
    if not events:
        return []
    blocks: list[dict[str, Any]] = []
    if len(events) > 1:
        rules = sorted({rule for _, rule in events})
        header = f"*{len(events)} changes* · rules {', '.join(f'`{escape(r)}`' for r in rules)}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": header}})
    for index, (event, rule) in enumerate(events):
        if index:
            blocks.append({"type": "divider"})
        link = link_for(link_template, event)
        blocks.extend(event_blocks(event, rule, link, compact=len(events) > 1))
    text = fallback_text(events)
    pages = [blocks[i : i + MAX_BLOCKS] for i in range(0, len(blocks), MAX_BLOCKS)]
    messages = []
    for number, raw in enumerate(pages, start=1):
        page = raw[1:] if raw and raw[0]["type"] == "divider" else raw
        suffix = f" (part {number}/{len(pages)})" if len(pages) > 1 else ""
        messages.append({"text": _truncate(text + suffix, MAX_TEXT), "blocks": page})
    return messages
