"""Per-request context: the language, the signed-in user re-read from the database, and the
time zone pages show times in.

The user row is re-checked on every request (joined with its session and tenant), so a
disabled user, a revoked session or a deactivated tenant is out at once (the session itself is
identity's: optria.identity.auth.SESSION_USER_KEY, ``app.state.identity``). The time zone is the
tenant's (the zone most of its sites use, cached for ``ZONE_TTL_S``); a page about one site or
asset switches to that site's zone (optria.web.formatting.current_zone).
"""

from __future__ import annotations

import logging
import time
from http.cookies import SimpleCookie

from litestar.types import ASGIApp, Receive, Scope, Send

from optria.assets import store as assets_store
from optria.identity.auth import SESSION_USER_KEY
from optria.web import formatting, i18n
from optria.web.errors import BadCharacters
from optria.web.metrics import REQUESTS

log = logging.getLogger("optria.web")

ZONE_TTL_S = 60.0
_zones: dict[object, tuple[float, str]] = {}


async def tenant_zone(app, tenant_id) -> str:
    """The tenant's time zone (cached a minute: a site's zone changes rarely)."""
    now = time.monotonic()
    hit = _zones.get(tenant_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        async with app.state.db.tenant(tenant_id) as conn:
            zone = await assets_store.tenant_timezone(conn, tenant_id) or formatting.DEFAULT_ZONE
    except Exception:
        log.exception("web.zone_lookup_failed")
        return formatting.DEFAULT_ZONE
    if len(_zones) > 10_000:
        _zones.clear()
    _zones[tenant_id] = (now + ZONE_TTL_S, zone)
    return zone


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
        user = scope["user"]
        zone_token = formatting.current_zone.set(
            await tenant_zone(scope["app"], user.tenant_id) if user is not None and user.tenant_id else
            formatting.DEFAULT_ZONE)
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
            formatting.current_zone.reset(zone_token)
            route = scope.get("path_template") or "unmatched"
            REQUESTS.observe(scope.get("method", "GET"), route, status_holder["status"],
                             time.perf_counter() - started)
