"""ADMIN_TOKEN checks: a bearer header for the API; a signed session cookie and CSRF for the page.

Nothing is stored server-side: the cookie and the CSRF token are HMACs keyed by ADMIN_TOKEN, so
rotating the token logs everyone out, and any number of admin processes agree without Redis.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from starlette.requests import Request

from cmrelay.settings import Secret

COOKIE = "cmrelay_admin"
SESSION_SECONDS = 12 * 3600  # one on-call shift; then the token is asked for again


def _sign(token: Secret, message: str) -> str:
    return hmac.new(token.reveal().encode(), message.encode(), hashlib.sha256).hexdigest()


def token_matches(token: Secret, given: str) -> bool:
    """Constant-time comparison of a presented token with ADMIN_TOKEN."""
    return hmac.compare_digest(given.encode(), token.reveal().encode())


def presented_bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, None without one."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


def new_session(token: Secret, now: float | None = None) -> str:
    """A cookie value proving a successful login at `now`."""
    issued = str(int(time.time() if now is None else now))
    return f"{issued}.{_sign(token, 'session:' + issued)}"


def session_ok(token: Secret, request: Request, now: float | None = None) -> bool:
    """True when the session cookie is ours and younger than SESSION_SECONDS."""
    issued, _, signature = request.cookies.get(COOKIE, "").partition(".")
    if not issued.isdigit() or len(issued) > 12:
        return False
    fresh = (time.time() if now is None else now) - int(issued) < SESSION_SECONDS
    return fresh and hmac.compare_digest(signature, _sign(token, "session:" + issued))


def csrf_token(token: Secret, request: Request) -> str:
    """The CSRF token for this session (a hidden field in every form)."""
    return _sign(token, "csrf:" + request.cookies.get(COOKIE, ""))[:32]


def csrf_ok(token: Secret, request: Request, given: str) -> bool:
    """True when a posted form carries this session's CSRF token."""
    return hmac.compare_digest(given.encode(), csrf_token(token, request).encode())
