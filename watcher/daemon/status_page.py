"""The status page (``GET /``): the status dict as one self-contained HTML page (pure).

No script, no external asset, no CDN: inline CSS, an inline-SVG events-per-hour chart
per source, and ``<meta http-equiv="refresh">`` to refresh itself. Tables scroll
sideways on a narrow screen; every value from the store or Gainsight is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

NONE = "\u2013"  # an en dash stands for "no value"

CSS = """
:root{color-scheme:light dark;--ok:#1a7f37;--bad:#c62828;--warn:#9a6700;--mute:#6e7781}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:12px;
max-width:1200px}
h1{font-size:1.25rem;margin:0 0 4px}h2{font-size:1.05rem;margin:20px 0 6px}
.meta{color:var(--mute);font-size:.9rem}
.wrap{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #8884;vertical-align:top}
th{font-weight:600;white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:.8rem;font-weight:600;
border:1px solid currentColor;white-space:nowrap}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}.mute{color:var(--mute)}
.err{color:var(--bad);font-size:.85rem;word-break:break-word}
svg{display:block}svg rect{fill:#0969da}
code{font-size:.85rem;word-break:break-all}
@media (max-width:700px){
.wrap table,.wrap tbody,.wrap tr,.wrap td{display:block}.wrap thead{display:none}
.wrap tr{border:1px solid #8886;border-radius:8px;margin:0 0 10px;padding:6px 10px}
.wrap tr.failed{border-color:var(--bad)}
.wrap td{border:0;padding:2px 0;text-align:left}
.wrap td[data-label]::before{content:attr(data-label) ": ";color:var(--mute);font-size:.8rem}
}
"""


def render(status: dict[str, Any], *, refresh_s: int = 15) -> str:
    """The whole page for one tenant's status."""
    daemon = status.get("daemon") or {}
    running = (
        _badge("daemon running" + (f" (pid {daemon['pid']})" if daemon.get("pid") else ""), "ok")
        if daemon.get("running")
        else _badge("daemon not running", "bad")
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="refresh" content="{int(refresh_s)}">',
        f"<title>gainsight-watcher: {escape(str(status.get('tenant', '')))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>gainsight-watcher <span class=mute>{escape(str(status.get('tenant', '')))}"
        "</span></h1>",
        f'<p class="meta">{running} · as of {escape(_time(status.get("generated_at")))} · '
        f"refreshes every {int(refresh_s)} s · "
        '<a href="/v1/status">JSON</a></p>',
        _sources(status.get("sources", [])),
        _api(status.get("api", {})),
        _sinks(status.get("sinks", [])),
        _rules(status.get("rules", [])),
        _events(status.get("last_events", [])),
        "</body></html>",
    ]
    return "\n".join(parts)


def _badge(text: str, kind: str) -> str:
    return f'<span class="badge {kind}">{escape(text)}</span>'


def _table(headers: Sequence[str], rows: Iterable[str], section: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(rows) or f'<tr><td colspan="{len(headers)}" class=mute>none</td></tr>'
    return (
        f'<div class="wrap"><table id="{section}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _td(value: Any, label: str | None = None, *, num: bool = False, raw: bool = False) -> str:
    """A cell; ``label`` names it in the phone layout; ``raw`` keeps ready-made HTML."""
    text = NONE if value is None else str(value)
    inner = text if raw else escape(text)
    attrs = ' class="n"' if num else ""
    if label:
        attrs += f' data-label="{escape(label)}"'
    return f"<td{attrs}>{inner}</td>"


def _time(value: Any) -> str:
    """``2026-12-01T21:35:21.284Z`` -> ``2026-12-01 21:35:21Z``: what a reader needs."""
    if not value:
        return NONE
    text = str(value)
    return text[:10] + " " + text[11:19] + "Z" if len(text) >= 19 and text[10] == "T" else text


def chart(counts: Sequence[int], *, width: int = 120, height: int = 28) -> str:
    """Inline SVG: one bar per hour, oldest left; the tooltip names the total."""
    peak = max(counts, default=0) or 1
    step = width / max(1, len(counts))
    bars = []
    for i, n in enumerate(counts):
        h = 0 if n == 0 else max(1.0, height * n / peak)
        bars.append(
            f'<rect x="{i * step:.1f}" y="{height - h:.1f}" width="{step * 0.8:.1f}" '
            f'height="{h:.1f}"/>'
        )
    total = sum(counts)
    return (
        f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"<title>{total} events in the last 24 hours, per hour</title>"
        f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" stroke="#8888"/>'
        f"{''.join(bars)}</svg>"
    )


def _sources(sources: list[dict[str, Any]]) -> str:
    rows = []
    for src in sources:
        last = src.get("last_poll") or {}
        outcome = last.get("outcome")
        if src.get("failing"):
            state = _badge("failed", "bad")
        elif outcome:
            state = _badge(str(outcome), "ok" if outcome == "ok" else "warn")
        else:
            state = _badge("no poll yet", "mute")
        poll = state
        if last:
            poll = (
                f"{escape(str(last.get('mode')))} {state}<br><span class=mute>"
                f"{escape(_time(last.get('finished_at') or last.get('started_at')))} · "
                f"{escape(_secs(last.get('duration_s')))} · {escape(str(last.get('records') or 0))}"
                f" records · {escape(str(last.get('api_calls') or 0))} calls</span>"
            )
        nxt = src.get("next_poll") or {}
        problem = ""
        error = src.get("last_error")
        if error:
            code = f"{error['gainsight_code']}: " if error.get("gainsight_code") else ""
            problem = (
                f'<div class="err">last error {escape(_time(error.get("at")))}: '
                f"{escape(code)}{escape(str(error.get('error') or ''))}</div>"
            )
        held = src.get("held_delete")
        if held:
            problem += (
                f'<div class="warn">mass delete held: {escape(str(held.get("deletes")))} of '
                f"{escape(str(held.get('of')))} records since {escape(_time(held.get('since')))}"
                "</div>"
            )
        cls = ' class="failed"' if src.get("failing") else ""
        name = (
            f"<b>{escape(src['name'])}</b> <span class=mute>{escape(src['kind'])}</span>{problem}"
        )
        rows.append(
            f'<tr{cls} data-source="{escape(src["name"])}">'
            + _td(name, raw=True)
            + _td(src.get("records"), "records", num=True)
            + _td(poll, "last poll", raw=True)
            + _td(f"{nxt.get('mode', NONE)} {_time(nxt.get('at'))}", "next poll")
            + _td(
                f"{src.get('events_last_hour', 0)} / {src.get('events_last_day', 0)}",
                "events 1 h / 24 h",
                num=True,
            )
            + _td(chart(src.get("events_per_hour") or []), "per hour, 24 h", raw=True)
            + _td(src.get("watermark") or NONE, "watermark")
            + "</tr>"
        )
    headers = ["source", "records", "last poll", "next poll", "events 1 h / 24 h"]
    return "<h2>Sources</h2>" + _table([*headers, "per hour, 24 h", "watermark"], rows, "sources")


def _sinks(sinks: list[dict[str, Any]]) -> str:
    rows = []
    for sink in sinks:
        if sink.get("paused"):
            state = _badge("paused", "warn")
        elif sink.get("failing"):
            state = _badge("failing", "bad")
        else:
            state = _badge("active", "ok")
        error = sink.get("last_error")
        err = f'<div class="err">{escape(str(error))}</div>' if error else ""
        name = f"<b>{escape(sink['name'])}</b> <span class=mute>{escape(str(sink.get('type')))}"
        rows.append(
            f'<tr data-sink="{escape(sink["name"])}">'
            + _td(f"{name}</span>{err}", raw=True)
            + _td(state, "state", raw=True)
            + _td(sink.get("delivered_last_day"), "delivered 24 h", num=True)
            + _td(sink.get("failing"), "failing", num=True)
            + _td(sink.get("dead_last_day"), "dead 24 h", num=True)
            + _td(sink.get("outbox_depth"), "outbox", num=True)
            + _td(_secs(sink.get("oldest_pending_age_s")), "oldest pending", num=True)
            + "</tr>"
        )
    headers = ["sink", "state", "delivered 24 h", "failing", "dead 24 h", "outbox"]
    return "<h2>Sinks</h2>" + _table([*headers, "oldest pending"], rows, "sinks")


def _rules(rules: list[dict[str, Any]]) -> str:
    rows = [
        f'<tr data-rule="{escape(r["name"])}">'
        + _td(f"<b>{escape(r['name'])}</b>", raw=True)
        + _td(
            _badge("paused", "warn") if r.get("paused") else _badge("active", "ok"),
            "state",
            raw=True,
        )
        + _td(r.get("matches_last_day", 0), "matches 24 h", num=True)
        + _td(r.get("delivered_last_day", 0), "delivered 24 h", num=True)
        + _td(r.get("suppressed_last_day", 0), "suppressed 24 h", num=True)
        + "</tr>"
        for r in rules
    ]
    headers = ["rule", "state", "matches 24 h", "delivered 24 h", "suppressed 24 h"]
    return "<h2>Rules</h2>" + _table(headers, rows, "rules")


def _api(api: dict[str, Any]) -> str:
    return (
        "<h2>Gainsight API budget</h2>"
        f'<p id="api">{escape(str(api.get("calls_this_minute", 0)))} / '
        f"{escape(str(api.get('per_minute_limit')))} calls this minute · "
        f"{escape(str(api.get('calls_today', 0)))} / {escape(str(api.get('per_day_limit')))} "
        f"today (UTC) · {escape(str(api.get('rate_limited_today', 0)))} answered 429 today</p>"
    )


def _events(events: list[dict[str, Any]]) -> str:
    rows = []
    for ev in events:
        changes = "; ".join(
            f"{field}: {_short(v.get('old'))} → {_short(v.get('new'))}"
            for field, v in (ev.get("changes") or {}).items()
        )
        who = escape(str(ev.get("name") or ev.get("key")))
        record = f"<b>{who}</b> <span class=mute>{escape(str(ev.get('key')))}</span>"
        rows.append(
            "<tr>"
            + _td(f"#{ev.get('sequence')} {_time(ev.get('time'))}")
            + _td(f"{ev.get('source')} {ev.get('change')}", "event")
            + _td(record, "record", raw=True)
            + _td(changes or NONE, "what changed")
            + "</tr>"
        )
    headers = ["# / time", "event", "record", "what changed"]
    return "<h2>Last 20 events</h2>" + _table(headers, rows, "events")


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _secs(value: Any) -> str:
    if value is None:
        return NONE
    seconds = float(value)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
