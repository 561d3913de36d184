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
        f'<p class="meta">{running} · as of {escape(str(status.get("generated_at", "")))} · '
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


def _td(value: Any, *, num: bool = False) -> str:
    text = NONE if value is None else str(value)
    return f'<td class="n">{escape(text)}</td>' if num else f"<td>{escape(text)}</td>"


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
        f"<title>{total} events in the last 24 hours, per hour</title>{''.join(bars)}</svg>"
    )


def _sources(sources: list[dict[str, Any]]) -> str:
    rows = []
    for src in sources:
        last = src.get("last_poll") or {}
        outcome = last.get("outcome")
        state = (
            _badge("failed", "bad")
            if src.get("failing")
            else _badge(str(outcome), "ok" if outcome == "ok" else "warn")
            if outcome
            else _badge("no poll yet", "mute")
        )
        poll = (
            f"{escape(str(last.get('mode')))} {state}<br><span class=mute>"
            f"{escape(str(last.get('finished_at') or last.get('started_at') or ''))} · "
            f"{escape(_secs(last.get('duration_s')))} · {escape(str(last.get('records') or 0))} "
            f"records · {escape(str(last.get('api_calls') or 0))} calls</span>"
            if last
            else state
        )
        nxt = src.get("next_poll") or {}
        error = src.get("last_error")
        problem = ""
        if error:
            code = f"{error['gainsight_code']}: " if error.get("gainsight_code") else ""
            problem = (
                f'<div class="err">last error {escape(str(error.get("at") or ""))}: '
                f"{escape(code)}{escape(str(error.get('error') or ''))}</div>"
            )
        held = src.get("held_delete")
        if held:
            problem += (
                f'<div class="warn">mass delete held: {escape(str(held.get("deletes")))} of '
                f"{escape(str(held.get('of')))} records since {escape(str(held.get('since')))}"
                "</div>"
            )
        cls = ' class="failed"' if src.get("failing") else ""
        rows.append(
            f'<tr{cls} data-source="{escape(src["name"])}">'
            f"<td><b>{escape(src['name'])}</b><br><span class=mute>{escape(src['kind'])}</span>"
            f"{problem}</td>"
            f"{_td(src.get('records'), num=True)}<td>{poll}</td>"
            f"<td>{escape(str(nxt.get('mode', NONE)))}<br><span class=mute>"
            f"{escape(str(nxt.get('at', '')))}</span></td>"
            f"{_td(src.get('events_last_hour'), num=True)}"
            f"{_td(src.get('events_last_day'), num=True)}"
            f"<td>{chart(src.get('events_per_hour') or [])}</td>"
            f"<td><code>{escape(str(src.get('watermark') or NONE))}</code></td></tr>"
        )
    headers = ["source", "records", "last poll", "next poll", "events 1 h", "events 24 h"]
    return "<h2>Sources</h2>" + _table([*headers, "per hour (24 h)", "watermark"], rows, "sources")


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
        rows.append(
            f'<tr data-sink="{escape(sink["name"])}"><td><b>{escape(sink["name"])}</b> '
            f"<span class=mute>{escape(str(sink.get('type')))}</span>{err}</td><td>{state}</td>"
            f"{_td(sink.get('delivered_last_day'), num=True)}{_td(sink.get('failing'), num=True)}"
            f"{_td(sink.get('dead_last_day'), num=True)}{_td(sink.get('outbox_depth'), num=True)}"
            f"{_td(_secs(sink.get('oldest_pending_age_s')), num=True)}</tr>"
        )
    headers = ["sink", "state", "delivered 24 h", "failing", "dead 24 h", "outbox", "oldest"]
    return "<h2>Sinks</h2>" + _table(headers, rows, "sinks")


def _rules(rules: list[dict[str, Any]]) -> str:
    rows = [
        f'<tr data-rule="{escape(r["name"])}"><td><b>{escape(r["name"])}</b></td>'
        f"<td>{_badge('paused', 'warn') if r.get('paused') else _badge('active', 'ok')}</td>"
        f"{_td(r.get('matches_last_day', 0), num=True)}"
        f"{_td(r.get('delivered_last_day', 0), num=True)}"
        f"{_td(r.get('suppressed_last_day', 0), num=True)}</tr>"
        for r in rules
    ]
    headers = ["rule", "state", "matches 24 h", "delivered 24 h", "suppressed 24 h"]
    return "<h2>Rules</h2>" + _table(headers, rows, "rules")


def _api(api: dict[str, Any]) -> str:
    return (
        "<h2>Gainsight API budget</h2>"
        f'<p id="api">{escape(str(api.get("calls_last_minute", 0)))} / '
        f"{escape(str(api.get('per_minute_limit')))} calls in the last minute · "
        f"{escape(str(api.get('calls_last_day', 0)))} / {escape(str(api.get('per_day_limit')))} "
        f"in the last 24 h · {escape(str(api.get('rate_limited_polls_last_day', 0)))} polls "
        "stopped by 429 in the last 24 h</p>"
    )


def _events(events: list[dict[str, Any]]) -> str:
    rows = []
    for ev in events:
        changes = "; ".join(
            f"{field}: {_short(v.get('old'))} → {_short(v.get('new'))}"
            for field, v in (ev.get("changes") or {}).items()
        )
        who = ev.get("name") or ev.get("key")
        rows.append(
            f"<tr>{_td(ev.get('sequence'), num=True)}{_td(ev.get('time'))}{_td(ev.get('source'))}"
            f"{_td(ev.get('change'))}<td>{escape(str(who))}<br><span class=mute>"
            f"{escape(str(ev.get('key')))}</span></td>{_td(changes or NONE)}</tr>"
        )
    headers = ["#", "time", "source", "change", "record", "what changed"]
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
