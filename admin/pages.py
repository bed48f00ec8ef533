"""Server-rendered HTML of the DLQ page (pure functions; every dynamic value goes through `e`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

import orjson

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}
header{background:#233;color:#fff;padding:.5em 1em;display:flex;gap:1em;align-items:center}
header a{color:#fff}main{padding:1em}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:30em}
.notice{background:#e8f5e9;padding:.5em 1em}.error{background:#fdecea;padding:.5em 1em}
form.filters input,form.filters select{width:9em}.danger{background:#c62828;color:#fff}
button{padding:.3em .8em;cursor:pointer}.muted{color:#777}
"""
FILTERS = (
    ("reason", "reason"),
    ("status", "status / HTTP"),
    ("entity", "entity"),
    ("error_class", "error class"),
    ("since", "since (2h, ISO)"),
    ("until", "until"),
    ("text", "text"),
)


def e(value: Any) -> str:
    """Escape for HTML text and attribute values."""
    return escape("" if value is None else str(value), quote=True)


def layout(title: str, body: str, csrf: str = "") -> str:
    """The page frame; a logout button when logged in (csrf given)."""
    nav = ""
    if csrf:
        nav = (
            '<a href="/">Dead letters</a><a href="/lookup">Find an event or customer</a>'
            '<form method="post" action="/logout" style="margin:0">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}"><button>Log out</button></form>'
        )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f'<meta name="viewport" content="width=device-width"><style>{CSS}</style></head>'
        f"<body><header><strong>cmrelay admin</strong>{nav}</header>"
        f"<main>{body}</main></body></html>"
    )


def lookup_page(csrf: str, query: Mapping[str, str], result: str = "", error: str = "") -> str:
    """Find an event by messageId or a customer by entity; the CLI's text views, escaped."""
    form = (
        '<form class="filters" method="get" action="/lookup">'
        f'<label>messageId <input name="message_id" value="{e(query.get("message_id"))}"></label>'
        f'<label>customer <input name="entity" placeholder="customer:acme" '
        f'value="{e(query.get("entity"))}"></label><button>Look up</button></form>'
    )
    shown = f'<p class="error">{e(error)}</p>' if error else ""
    if result:
        shown += f"<pre>{e(result)}</pre>"
    return layout(
        "Find - cmrelay admin", f"<h1>Find an event or a customer</h1>{form}{shown}", csrf
    )


def login_page(error: str = "") -> str:
    """Ask for the admin token."""
    message = f'<p class="error">{e(error)}</p>' if error else ""
    return layout(
        "Log in - cmrelay admin",
        f"<h1>Log in</h1>{message}"
        '<form method="post" action="/login"><label>Admin token '
        '<input type="password" name="token" autocomplete="current-password" required autofocus>'
        "</label> <button>Log in</button></form>",
    )


def _notice(text: str) -> str:
    return f'<p class="notice" role="status">{e(text)}</p>' if text else ""


def bars_svg(hourly: Sequence[Mapping[str, Any]], width: int = 480, height: int = 80) -> str:
    """Dead letters per hour as inline SVG bars, each with its hour and count as a tooltip."""
    top = max((int(h["count"]) for h in hourly), default=0) or 1
    slot = width / max(len(hourly), 1)
    bars = []
    for i, hour in enumerate(hourly):
        h = round(height * int(hour["count"]) / top, 1)
        bars.append(
            f'<rect x="{i * slot:.1f}" y="{height - h}" width="{slot - 2:.1f}" height="{h}" '
            f'fill="#c62828"><title>{e(hour["hour"])}: {int(hour["count"])}</title></rect>'
        )
    span = f"{hourly[0]['hour']} … {hourly[-1]['hour']}" if hourly else ""
    return (
        f'<figure style="margin:0"><svg role="img" aria-label="dead letters per hour, last 24 h" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'style="background:#fafafa">{"".join(bars)}</svg>'
        f'<figcaption class="muted">{e(span)} (UTC); tallest bar = {top}</figcaption></figure>'
    )


def _counts(title: str, counts: Mapping[str, int]) -> str:
    items = ", ".join(f"{e(k)}: {int(v)}" for k, v in counts.items()) or "none"
    return f"<div><strong>{e(title)}</strong> {items}</div>"


def list_page(
    rows: Sequence[Mapping[str, Any]],
    stats: Mapping[str, Any],
    params: Mapping[str, str],
    csrf: str,
    notice: str = "",
) -> str:
    """The dead-letter list with filters, counts and the hourly chart."""
    fields = "".join(
        f'<label>{e(label)} <input name="{name}" value="{e(params.get(name, ""))}"></label> '
        for name, label in FILTERS
    )
    query = urlencode({k: v for k, v in params.items() if v})
    body_rows = "".join(
        f'<tr><td><a href="/entries/{e(r["id"])}">{e(r["id"][:12])}</a></td>'
        f"<td>{e(r['dead_lettered_at'])}</td><td>{e(r['entity'])}</td><td>{e(r['reason'])}</td>"
        f"<td>{e(r['status'])}</td><td>{e(r['status_code'] or '-')}</td><td>{e(r['events'])}</td>"
        f"<td>{e(r['attempts'])}</td><td>{e(str(r['last_error'])[:120])}</td></tr>"
        for r in rows
    )
    table = (
        "<table><thead><tr><th>id</th><th>dead-lettered</th><th>entity</th><th>reason</th>"
        "<th>status</th><th>HTTP</th><th>events</th><th>attempts</th><th>last error</th></tr>"
        f"</thead><tbody>{body_rows}</tbody></table>"
        if rows
        else '<p class="muted">No dead letters match.</p>'
    )
    bulk = (
        f'<p><a href="/replay?{e(query)}">Replay all matching…</a> · '
        f'<a href="/purge?{e(query)}">Purge all matching…</a></p>'
        if rows
        else ""
    )
    summary = (
        f"<section><h2>Counts</h2><div>still dead: {int(stats['dead'])} "
        f"(kept: {int(stats['total'])}, replayed: {int(stats['total']) - int(stats['dead'])})</div>"
        + _counts("by reason:", stats["by_reason"])
        + _counts("by HTTP status:", stats["by_status_code"])
        + _counts("by age:", stats["by_age"])
        + f"<h3>Per hour, last 24 h</h3>{bars_svg(stats['hourly'])}</section>"
    )
    body = (
        f"<h1>Dead letters</h1>{_notice(notice)}"
        f'<form class="filters" method="get" action="/">{fields}<button>Filter</button> '
        f'<a href="/">clear</a></form><p>{len(rows)} shown</p>{bulk}{table}{summary}'
    )
    return layout("Dead letters - cmrelay admin", body, csrf)


def _pre(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return f"<pre>{e(text)}</pre>"


def entry_page(view: Mapping[str, Any], csrf: str, notice: str = "") -> str:
    """One dead letter: what failed and why, the events, the plan, every attempt, actions."""
    facts = (
        ("entity", view["entity"]),
        ("status", view["status"]),
        ("reason", view["reason"]),
        ("error class", view["error_class"]),
        ("HTTP status", view["status_code"] or "-"),
        ("attempts", view["attempts"]),
        ("first attempt", view["first_attempt_at"]),
        ("dead-lettered", view["dead_lettered_at"]),
        ("message ids", ", ".join(view["message_ids"])),
        ("last error", view["last_error"]),
    )
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
    attempts = "".join(
        f"<tr><td>{e(a.get('at'))}</td><td>{e(a.get('error_class'))}</td>"
        f"<td>{e(a.get('status_code') or '-')}</td><td>{e(a.get('error'))}</td></tr>"
        for a in view["history"]
    )
    entry_id = e(view["id"])
    actions = (
        f'<p><a href="/entries/{entry_id}/replay">Replay…</a> · '
        f'<a href="/entries/{entry_id}/purge">Purge…</a></p>'
    )
    body = (
        f"<h1>Dead letter {entry_id}</h1>{_notice(notice)}{actions}<table>{rows}</table>"
        f"<h2>Attempts</h2><table><thead><tr><th>at</th><th>error class</th><th>HTTP</th>"
        f"<th>error</th></tr></thead><tbody>{attempts}</tbody></table>"
        f"<h2>Last response</h2><pre>{e(view['last_response'] or '(no body)')}</pre>"
        f"<h2>Original events ({len(view['events'])})</h2>"
        + "".join(_pre(ev) for ev in view["events"])
        + f"<h2>Planned operations</h2>{_pre(view['planned_operations'])}"
    )
    return layout(f"Dead letter {view['id']} - cmrelay admin", body, csrf)


def confirm_page(
    title: str,
    question: str,
    action: str,
    hidden: Mapping[str, str],
    csrf: str,
    *,
    danger: bool,
    cancel: str,
) -> str:
    """The confirmation step before a replay or purge: a POST form carrying the CSRF token."""
    fields = "".join(
        f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in hidden.items()
    )
    button_class = ' class="danger"' if danger else ""
    body = (
        f"<h1>{e(title)}</h1><p>{e(question)}</p>"
        f'<form method="post" action="{e(action)}">{fields}'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<button{button_class} name="confirm" value="yes">Yes, {e(title.lower())}</button> '
        f'<a href="{e(cancel)}">Cancel</a></form>'
    )
    return layout(f"{title} - cmrelay admin", body, csrf)
