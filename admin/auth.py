"""ADMIN_TOKEN checks: a bearer header for the API; a revocable session and CSRF for the page.

A login creates a random session id (the cookie) and records a hash of it in Redis for
SESSION_SECONDS, so logging out ends the session for good, on every admin process, and a Redis
dump holds no usable cookie. Each record carries a fingerprint of ADMIN_TOKEN: rotating the
token logs everyone out. The CSRF token is an HMAC of the session id keyed by ADMIN_TOKEN.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import redis
from starlette.requests import Request

from cmrelay.keys import Keys
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


class Sessions:
    """The page's sessions, in Redis (blocking calls: run them off the event loop)."""

    def __init__(self, client: redis.Redis, keys: Keys, token: Secret) -> None:
        self.client = client
        self.keys = keys
        self._fingerprint = _sign(token, "session-token").encode()

    def _key(self, session_id: str) -> str:
        return self.keys.admin_session(hashlib.sha256(session_id.encode()).hexdigest())

    def start(self) -> str:
        """A new session; its id is the cookie value."""
        session_id = secrets.token_urlsafe(32)
        self.client.set(self._key(session_id), self._fingerprint, ex=SESSION_SECONDS)
        return session_id

    def valid(self, session_id: str) -> bool:
        """True while the session exists, unexpired, started under the current ADMIN_TOKEN."""
        if not session_id or len(session_id) > 100:
            return False
        stored = self.client.get(self._key(session_id))
        return isinstance(stored, bytes) and hmac.compare_digest(stored, self._fingerprint)

    def end(self, session_id: str) -> None:
        """Forget the session: its cookie is refused from now on, everywhere."""
        if session_id:
            self.client.delete(self._key(session_id))


def session_id(request: Request) -> str:
    """The session cookie's value ("" without one)."""
    return request.cookies.get(COOKIE, "")


def csrf_token(token: Secret, request: Request) -> str:
    """The CSRF token for this session (a hidden field in every form)."""
    return _sign(token, "csrf:" + session_id(request))[:32]


def csrf_ok(token: Secret, request: Request, given: str) -> bool:
    """True when a posted form carries this session's CSRF token."""
    return hmac.compare_digest(given.encode(), csrf_token(token, request).encode())
