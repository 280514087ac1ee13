"""Per-request context: the language, and the signed-in user re-read from the database.

The user row is re-checked on every request (joined with its session and tenant), so a
disabled user, a revoked session or a deactivated tenant is out at once.
"""

from __future__ import annotations

import logging
import time
from http.cookies import SimpleCookie

from litestar.types import ASGIApp, Receive, Scope, Send

from optria.web import i18n
from optria.web.errors import BadCharacters
from optria.web.metrics import REQUESTS

log = logging.getLogger("optria.web")

SESSION_USER_KEY = "sid"


def _cookies(scope: Scope) -> dict[str, str]:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:
                return {}
            return {k: m.value for k, m in jar.items()}
    return {}


def _query_lang(scope: Scope) -> str | None:
    qs = scope.get("query_string", b"").decode("latin-1")
    for part in qs.split("&"):
        if part.startswith("lang="):
            return part[5:]
    return None


class RequestContextMiddleware:
    """Sets language and ``scope["user"]`` (None when anonymous); records request metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", ""):
            raise BadCharacters()  # PostgreSQL text cannot hold NUL: refuse it here with a clear 400
        cookies = _cookies(scope)
        token = i18n.current_lang.set(i18n.pick_lang(cookies.get("lang"), _query_lang(scope)))
        scope["user"] = None
        session = scope.get("session") or {}
        sid = session.get(SESSION_USER_KEY) if isinstance(session, dict) else None
        if sid:
            store = scope["app"].state.identity
            try:
                scope["user"] = await store.session_user(sid)
            except Exception:
                log.exception("web.session_lookup_failed")
                scope["user"] = None
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            i18n.current_lang.reset(token)
            route = scope.get("path_template") or "unmatched"
            REQUESTS.observe(scope.get("method", "GET"), route, status_holder["status"],
                             time.perf_counter() - started)
