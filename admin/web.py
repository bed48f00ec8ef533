"""The on-call DLQ page: log in, list and filter, one entry, replay and purge after confirming."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from admin import pages, paging
from admin.auth import COOKIE, SESSION_SECONDS, csrf_ok, csrf_token, session_id
from admin.auth import token_matches as _token_matches
from admin.bodies import LOGIN_MAX, BodyTooLarge, read_limited
from admin.context import AdminContext
from admin.throttle import client_address, throttled_message
from cmrelay.dlq import query as q
from cmrelay.dlq.store import DlqFilter, Tally
from cmrelay.entity_view import entity_view, render_entity
from cmrelay.errors import InvalidQueryError
from cmrelay.keys import ENTITY_PREFIX
from cmrelay.trace_view import render_trace, trace_view

MAX_FORM = 100_000
FILTER_KEYS = ("reason", "status", "entity", "error_class", "since", "until", "text")
# Fixed notices, chosen by a code in the redirect: nothing from the URL is echoed as a message.
NOTICES = {
    "replayed": "Replayed: the events are back on the ingest queue.",
    "already": "Nothing replayed: already replayed before.",
    "purged": "Purged.",
}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Page = Callable[[Request, AdminContext], Awaitable[Response]]


def html(body: str, status: int = 200) -> HTMLResponse:
    """An HTML answer with the page's security headers."""
    return HTMLResponse(body, status, HEADERS)


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, 303, HEADERS)


def _page(ctx: AdminContext, page: Page, *, post: bool = False) -> Callable[..., Any]:
    """Session required (else to /login); POSTs need the CSRF token; bad input is a 400 page."""

    async def run(request: Request) -> Response:
        try:
            if not await run_in_threadpool(ctx.sessions.valid, session_id(request)):
                return _see("/login")
            if post:
                form = await _form(request)
                if not csrf_ok(ctx.token, request, form.get("csrf", "")):
                    return html(pages.layout("Forbidden", "<h1>Expired form</h1>"), 403)
                request.state.form = form
            return await page(request, ctx)
        except BodyTooLarge as exc:
            return _too_large(exc)
        except InvalidQueryError as exc:
            body = f'<h1>Bad request</h1><p class="error">{pages.e(exc)}</p><a href="/">back</a>'
            return html(pages.layout("Bad request", body, csrf_token(ctx.token, request)), 400)
        except redis.RedisError as exc:
            return _redis_down(exc)

    return run


async def _form(request: Request, limit: int = MAX_FORM) -> dict[str, str]:
    raw = await read_limited(request, limit)
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _redis_down(exc: redis.RedisError) -> Response:
    body = f"<h1>Redis is unavailable</h1><p>{pages.e(type(exc).__name__)}</p>"
    return html(pages.layout("Unavailable", body), 503)


def _too_large(exc: BodyTooLarge) -> Response:
    body = f'<h1>Request too large</h1><p class="error">{pages.e(exc)}</p><a href="/">back</a>'
    response = html(pages.layout("Too large", body), 413)
    response.headers["Connection"] = "close"  # else uvicorn reads (and drops) the rest of it
    return response


def _filters(source: dict[str, str]) -> dict[str, str]:
    return {k: source[k] for k in FILTER_KEYS if source.get(k)}


async def login_form(request: Request) -> Response:
    """GET /login."""
    return html(pages.login_page())


def login(ctx: AdminContext) -> Callable[[Request], Awaitable[Response]]:
    """POST /login: the token in, a random HttpOnly SameSite=Strict session cookie out."""

    async def run(request: Request) -> Response:
        address = client_address(request)
        try:
            form = await _form(request, LOGIN_MAX)
            if _token_matches(ctx.token, form.get("token", "")):
                wait = await run_in_threadpool(ctx.throttle.wait_seconds, address)
            else:
                wait = await run_in_threadpool(ctx.throttle.failed, address)
                if not wait:
                    return html(pages.login_page("That is not the admin token."), 401)
            if wait:  # right token or wrong, the same answer while throttled
                throttled = html(pages.login_page(throttled_message(wait)), 429)
                throttled.headers["Retry-After"] = str(wait)
                return throttled
            started = await run_in_threadpool(ctx.sessions.start)
        except BodyTooLarge as exc:  # before any session: this is anyone's request
            return _too_large(exc)
        except redis.RedisError as exc:
            return _redis_down(exc)
        response = _see("/")
        response.set_cookie(
            COOKIE, started, max_age=SESSION_SECONDS, httponly=True,
            samesite="strict", secure=request.url.scheme == "https", path="/",
        )  # fmt: skip
        return response

    return run


async def logout(request: Request, ctx: AdminContext) -> Response:
    """POST /logout: the session ends server-side, so a copied cookie is refused too."""
    await run_in_threadpool(ctx.sessions.end, session_id(request))
    response = _see("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


def replay_refusal(flt: DlqFilter, tally: Tally) -> str | None:
    """Why "replay all matching" is not offered (and refused) for this selection, else None."""
    if q.is_empty(flt):
        return "filter the list first: replaying everything is not offered here (CLI: --all)"
    if tally.dead == 0:
        return "nothing to replay: no matching entry is still dead"
    return None


def _list_view(ctx: AdminContext, params: dict[str, str], limit: int, offset: int) -> pages.Listing:
    """Blocking reads of the list page, in one thread: stats first (it trims past retention)."""
    flt = q.build_filter(params, time.time(), limit=limit)
    stats = ctx.dlq.stats()
    entries, tally = ctx.dlq.page(flt, offset)
    rows = ctx.views(entries, q.summary)
    window = paging.Window(offset, limit, tally.matching)
    offer = replay_refusal(flt, tally) is None
    return pages.Listing(rows, stats, params, window, tally.dead, offer)


async def listing(request: Request, ctx: AdminContext) -> Response:
    """GET /: filters, the chart and counts, one page of matching entries with totals."""
    params = _filters(dict(request.query_params))
    limit = paging.page_size(request.query_params.get("limit"))
    offset = q.parse_offset(request.query_params.get("offset"))
    view = await run_in_threadpool(_list_view, ctx, params, limit, offset)
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    if request.query_params.get("done") == "bulk":
        count = request.query_params.get("n", "")
        # Only a plain count is shown: the URL is anyone's to write.
        notice = f"Done: {count} entries." if count.isascii() and count.isdigit() else "Done."
    return html(pages.list_page(view, csrf_token(ctx.token, request), notice))


def _not_found(ctx: AdminContext, request: Request) -> Response:
    body = '<h1>Not found</h1><p>Unknown, purged or past retention.</p><a href="/">back</a>'
    return html(pages.layout("Not found", body, csrf_token(ctx.token, request)), 404)


async def lookup(request: Request, ctx: AdminContext) -> Response:
    """GET /lookup?message_id= | ?entity=: `cmrelay trace` / `cmrelay entity` as a page."""
    query = {k: v.strip() for k, v in request.query_params.items() if k in ("message_id", "entity")}
    csrf = csrf_token(ctx.token, request)
    client, keys = ctx.dlq.client, ctx.dlq.keys
    if query.get("message_id"):
        view = await run_in_threadpool(trace_view, client, keys, query["message_id"])
        if view is None:
            error = "no trace of that event (not taken off the queue yet, or expired)"
            return html(pages.lookup_page(csrf, query, error=error), 404)
        return html(pages.lookup_page(csrf, query, render_trace(view)))
    if query.get("entity"):
        name = query["entity"]
        if not name.startswith(ENTITY_PREFIX):
            raise InvalidQueryError(f"a customer looks like {ENTITY_PREFIX}<external id>")
        view = await run_in_threadpool(entity_view, client, keys, name, time.time())
        return html(pages.lookup_page(csrf, query, render_entity(view)))
    return html(pages.lookup_page(csrf, query))


async def entry(request: Request, ctx: AdminContext) -> Response:
    """GET /entries/{id}."""
    found = await run_in_threadpool(ctx.dlq.get, request.path_params["entry_id"])
    if found is None:
        return _not_found(ctx, request)
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    (view,) = await run_in_threadpool(ctx.views, [found], q.detail)
    return html(pages.entry_page(view, csrf_token(ctx.token, request), notice))


def _confirm(kind: str, bulk: bool) -> Page:
    """GET confirmation page for replaying or purging one entry or all matching the filters."""

    async def run(request: Request, ctx: AdminContext) -> Response:
        csrf = csrf_token(ctx.token, request)
        if bulk:
            params = _filters(dict(request.query_params))
            flt = q.build_filter(params, time.time(), q.MAX_SELECTION)
            tally = await run_in_threadpool(_bulk_allowed, ctx, kind, flt)
            if kind == "replay":
                what = f"the {tally.dead:,} matching entries still dead"
            else:
                what = f"{min(tally.matching, q.MAX_SELECTION):,} matching entries"
            action, hidden = f"/{kind}", params
            cancel = "/?" + urlencode(params)
        else:
            entry_id = request.path_params["entry_id"]
            if await run_in_threadpool(ctx.dlq.get, entry_id) is None:
                return _not_found(ctx, request)
            what, action, hidden = f"entry {entry_id}", f"/entries/{quote(entry_id)}/{kind}", {}
            cancel = f"/entries/{quote(entry_id)}"
        if kind == "replay":
            question = f"Queue the events of {what} again, past dedupe? Each entry replays once."
        else:
            question = f"Delete {what} for good? This cannot be undone."
        title = "Replay" if kind == "replay" else "Purge"
        page = pages.confirm_page(
            title, question, action, hidden, csrf, danger=kind == "purge", cancel=cancel
        )
        return html(page)

    return run


async def replay_one(request: Request, ctx: AdminContext) -> Response:
    """POST /entries/{id}/replay."""
    entry_id = request.path_params["entry_id"]
    selection = await run_in_threadpool(q.select, ctx.dlq, [entry_id])
    report = await run_in_threadpool(q.replay, ctx.dlq, selection)
    done = "replayed" if report.replayed else "already"
    return _see(f"/entries/{quote(entry_id)}?done={done}")


async def purge_one(request: Request, ctx: AdminContext) -> Response:
    """POST /entries/{id}/purge."""
    await run_in_threadpool(ctx.dlq.purge, [request.path_params["entry_id"]])
    return _see("/?done=purged")


def _bulk_allowed(ctx: AdminContext, kind: str, flt: DlqFilter) -> Tally:
    """The selection's totals; InvalidQueryError when the page does not offer this bulk action:
    purge without a filter, replay without a filter or with nothing still dead."""
    if kind == "purge" and q.is_empty(flt):
        raise InvalidQueryError("filter the list first: purging everything is not offered")
    tally = ctx.dlq.count(flt)
    refused = replay_refusal(flt, tally) if kind == "replay" else None
    if refused:
        raise InvalidQueryError(refused)
    return tally


def _bulk(kind: str) -> Page:
    """POST /replay or /purge with the filters carried by the confirmation form."""

    async def run(request: Request, ctx: AdminContext) -> Response:
        params = _filters(request.state.form)
        flt = q.build_filter(params, time.time(), q.MAX_SELECTION)
        await run_in_threadpool(_bulk_allowed, ctx, kind, flt)
        selection = await run_in_threadpool(q.select, ctx.dlq, (), flt)
        if kind == "replay":
            n = len((await run_in_threadpool(q.replay, ctx.dlq, selection)).replayed)
        else:
            n = await run_in_threadpool(ctx.dlq.purge, [e.id for e in selection.entries])
        return _see("/?" + urlencode({**params, "done": "bulk", "n": n}))

    return run


def routes(ctx: AdminContext) -> list[Route]:
    """The page's routes, bound to one context."""
    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login(ctx), methods=["POST"]),
        Route("/logout", _page(ctx, logout, post=True), methods=["POST"]),
        Route("/", _page(ctx, listing), methods=["GET"]),
        Route("/lookup", _page(ctx, lookup), methods=["GET"]),
        Route("/replay", _page(ctx, _confirm("replay", True)), methods=["GET"]),
        Route("/replay", _page(ctx, _bulk("replay"), post=True), methods=["POST"]),
        Route("/purge", _page(ctx, _confirm("purge", True)), methods=["GET"]),
        Route("/purge", _page(ctx, _bulk("purge"), post=True), methods=["POST"]),
        Route("/entries/{entry_id}", _page(ctx, entry), methods=["GET"]),
        Route("/entries/{entry_id}/replay", _page(ctx, _confirm("replay", False)), methods=["GET"]),
        Route("/entries/{entry_id}/replay", _page(ctx, replay_one, post=True), methods=["POST"]),
        Route("/entries/{entry_id}/purge", _page(ctx, _confirm("purge", False)), methods=["GET"]),
        Route("/entries/{entry_id}/purge", _page(ctx, purge_one, post=True), methods=["POST"]),
    ]
