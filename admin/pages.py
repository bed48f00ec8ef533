"""Server-rendered HTML of the DLQ page (pure functions; every dynamic value goes through `e`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlencode

import orjson

from admin.chart import chart_svg
from admin.paging import PAGE_SIZES, Window, page_url, totals_line
from cmrelay.dlq.query import ERROR_CLASSES, REASONS, STATUSES

CSS = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}
header{background:#233;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;gap:.5em 1em;
align-items:center}header a{color:#fff}main{padding:1em;max-width:100%}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:30em;
white-space:pre-wrap;overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%}.facts td,h1,p{overflow-wrap:anywhere}
.notice{background:#e8f5e9;padding:.5em 1em}.error{background:#fdecea;padding:.5em 1em}
form.filters{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:flex-end}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#555}
form.filters input,form.filters select{width:11em;max-width:100%;font-size:14px}
.danger{background:#c62828;color:#fff}button{padding:.3em .8em;cursor:pointer}.muted{color:#777}
.pager{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:center}
.chart{width:100%;max-width:640px;height:auto;display:block;background:#fafafa}
td.err{overflow-wrap:anywhere;min-width:14em}.nowrap{white-space:nowrap}
.counts div{margin:.1em 0}.replay{font-weight:bold}.replay-dead{color:#c62828}
.replay-delivered{color:#2e7d32}
"""
REPLAY_STATES = {  # the `replay.state` of a replayed entry, as the page says it
    "waiting": "waiting: not delivered yet",
    "delivered": "delivered",
    "dead": "dead-lettered again",
    "mixed": "partly delivered, partly dead-lettered",
    "unknown": "outcome unknown (trace expired)",
}


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


def _counts(title: str, counts: Mapping[str, int]) -> str:
    items = ", ".join(f"{e(k)}: {int(v):,}" for k, v in counts.items()) or "none"
    return f"<div><strong>{e(title)}</strong> {items}</div>"


def _select(name: str, label: str, options: Sequence[tuple[str, str]], current: str) -> str:
    """A labelled select; "" is "any"; a current value outside the options stays selectable."""
    if current and current not in {value for value, _ in options}:
        options = [*options, (current, current)]
    items = "".join(
        f'<option value="{e(value)}"{" selected" if value == current else ""}>{e(text)}</option>'
        for value, text in [("", "any"), *options]
    )
    return f'<label>{e(label)} <select name="{name}">{items}</select></label> '


def _text_input(name: str, label: str, current: str, placeholder: str = "") -> str:
    hint = f' placeholder="{e(placeholder)}"' if placeholder else ""
    return f'<label>{e(label)} <input name="{name}" value="{e(current)}"{hint}></label> '


def filter_form(params: Mapping[str, str], stats: Mapping[str, Any], limit: int) -> str:
    """Selects where the values are a known set (reason, status, error class, page size: what
    cmrelay.dlq.query knows, plus what the DLQ holds); text inputs where the value is free."""
    codes = sorted(str(c) for c in stats.get("by_status_code", {}) if str(c).isdigit())
    statuses = [(s, s) for s in STATUSES] + [(c, f"HTTP {c}") for c in codes]
    classes = sorted({*ERROR_CLASSES, *stats.get("by_error_class", {})})
    fields = (
        _select("reason", "reason", [(r, r) for r in REASONS], params.get("reason", ""))
        + _select("status", "status / HTTP", statuses, params.get("status", ""))
        + _select(
            "error_class", "error class", [(c, c) for c in classes], params.get("error_class", "")
        )
        + _text_input("entity", "entity", params.get("entity", ""), "customer:acme")
        + _text_input("since", "since (2h, ISO)", params.get("since", ""), "2h")
        + _text_input("until", "until", params.get("until", ""))
        + _text_input("text", "text", params.get("text", ""), "messageId, error ...")
    )
    sizes = "".join(
        f'<option value="{n}"{" selected" if n == limit else ""}>{n}</option>' for n in PAGE_SIZES
    )
    return (
        f'<form class="filters" method="get" action="/">{fields}'
        f'<label>per page <select name="limit">{sizes}</select></label> '
        '<button>Filter</button> <a href="/">clear</a></form>'
    )


def replay_outcome(row: Mapping[str, Any]) -> str:
    """What the replay of a replayed entry became (its optional `replay` dict), "" otherwise:
    the state, counts by outcome, and links to the dead letters the replay produced."""
    replay = row.get("replay")
    if row.get("status") != "replayed" or not isinstance(replay, Mapping):
        return ""
    state = str(replay.get("state", "unknown"))
    text = f'<span class="replay replay-{e(state)}">{e(REPLAY_STATES.get(state, state))}</span>'
    counts = replay.get("counts") or {}
    if counts:
        text += " (" + ", ".join(f"{e(k)} {int(v)}" for k, v in counts.items()) + ")"
    ids = [str(i) for i in replay.get("dead_letter_ids") or ()]
    if ids:
        links = ", ".join(f'<a href="/entries/{e(i)}">{e(i[:12])}</a>' for i in ids)
        text += f" → new dead letter{'s' if len(ids) > 1 else ''}: {links}"
    return text


def entity_links(entity: str) -> str:
    """An entity, linked to its other dead letters (the list filtered by it) and its state."""
    listed = "/?" + urlencode({"entity": entity})
    state = "/lookup?" + urlencode({"entity": entity})
    return (
        f'<a href="{e(listed)}" title="its dead letters">{e(entity)}</a> '
        f'<a class="muted" href="{e(state)}" title="customer state">(state)</a>'
    )


def _row(r: Mapping[str, Any]) -> str:
    outcome = replay_outcome(r)
    status = e(r["status"]) + (f"<br>{outcome}" if outcome else "")
    return (
        f'<tr><td><a href="/entries/{e(r["id"])}">{e(r["id"][:12])}</a></td>'
        f'<td class="nowrap">{e(r["dead_lettered_at"])}</td>'
        f"<td>{entity_links(str(r['entity']))}</td>"
        f"<td>{e(r['reason'])}</td><td>{status}</td><td>{e(r['status_code'] or '-')}</td>"
        f"<td>{e(r['events'])}</td><td>{e(r['attempts'])}</td>"
        f'<td class="err">{e(str(r["last_error"])[:120])}</td></tr>'
    )


@dataclass(frozen=True)
class Listing:
    """What the list page shows: one page of rows and what the whole selection holds."""

    rows: Sequence[Mapping[str, Any]]
    stats: Mapping[str, Any]
    params: Mapping[str, str]  # the filters set (no page size or offset)
    window: Window
    dead: int  # matching entries still dead
    offer_replay: bool  # "Replay all matching": a filter is set and something is still dead


def _pager(view: Listing) -> str:
    w = view.window
    links = ""
    if w.prev_offset is not None:
        url = page_url(view.params, w.limit, w.prev_offset)
        links += f'<a rel="prev" href="{e(url)}">&lsaquo; previous</a>'
    if w.next_offset is not None:
        url = page_url(view.params, w.limit, w.next_offset)
        links += f'<a rel="next" href="{e(url)}">next &rsaquo;</a>'
    line = totals_line(w, view.dead, w.total - view.dead)
    return f'<p class="pager"><span class="totals">{e(line)}</span>{links}</p>'


def _summary(stats: Mapping[str, Any]) -> str:
    kept, dead = int(stats["total"]), int(stats["dead"])
    return (
        '<section class="counts"><h2>Whole DLQ</h2>'
        f'<figure style="margin:.5em 0">{chart_svg(stats["hourly"])}</figure>'
        f"<div>still dead: {dead:,} (kept: {kept:,}, replayed: {kept - dead:,})</div>"
        + _counts("by reason:", stats["by_reason"])
        + _counts("by HTTP status:", stats["by_status_code"])
        + _counts("by age:", stats["by_age"])
        + "</section>"
    )


def list_page(view: Listing, csrf: str, notice: str = "") -> str:
    """The dead-letter list: filters, whole-DLQ chart and counts, then one page of matching
    entries with their totals and prev/next links that keep the filters."""
    query = urlencode(view.params)
    table = (
        '<div class="scroll"><table><thead><tr><th>id</th><th>dead-lettered</th><th>entity</th>'
        "<th>reason</th><th>status</th><th>HTTP</th><th>events</th><th>attempts</th>"
        f"<th>last error</th></tr></thead><tbody>{''.join(_row(r) for r in view.rows)}"
        "</tbody></table></div>"
        if view.rows
        else '<p class="muted">No dead letters match.</p>'
    )
    actions = []
    if view.offer_replay:
        actions.append(f'<a href="/replay?{e(query)}">Replay all matching…</a>')
    if view.params and view.window.total:
        actions.append(f'<a href="/purge?{e(query)}">Purge all matching…</a>')
    bulk = f"<p>{' · '.join(actions)}</p>" if actions else ""
    pager = _pager(view)
    body = (
        f"<h1>Dead letters</h1>{_notice(notice)}"
        f"{filter_form(view.params, view.stats, view.window.limit)}{_summary(view.stats)}"
        f"<h2>Matching entries</h2>{pager}{bulk}{table}{pager if view.rows else ''}"
    )
    return layout("Dead letters - cmrelay admin", body, csrf)


def _pre(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return f"<pre>{e(text)}</pre>"


def entry_page(view: Mapping[str, Any], csrf: str, notice: str = "") -> str:
    """One dead letter: what failed and why, the events, the plan, every attempt, actions."""
    facts = (
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
    rows = f"<tr><th>entity</th><td>{entity_links(str(view['entity']))}</td></tr>"
    outcome = replay_outcome(view)
    if outcome:
        rows += f"<tr><th>replay outcome</th><td>{outcome}</td></tr>"
    rows += "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
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
        f"<h1>Dead letter {entry_id}</h1>{_notice(notice)}{actions}"
        f'<div class="scroll"><table class="facts">{rows}</table></div>'
        '<h2>Attempts</h2><div class="scroll"><table><thead><tr><th>at</th><th>error class</th>'
        f"<th>HTTP</th><th>error</th></tr></thead><tbody>{attempts}</tbody></table></div>"
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
