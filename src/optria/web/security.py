"""Security headers on every response: a strict Content-Security-Policy and its companions.

The policy allows scripts, styles, images and fetches from this origin only, and nothing
inline: no ``<script>`` blocks, no ``style=""`` or ``on*=""`` attributes (pages carry their
behaviour in ``/static/*.js`` and their looks in ``/static/optria.css``). Data for a
script travels in ``<script type="application/json">`` blocks, which browsers never run.
Pages cannot be framed by anyone (``frame-ancestors 'none'`` and ``X-Frame-Options``).
HSTS is sent in production only, where the service is behind TLS; in development it would
pin ``localhost`` to HTTPS in the developer's browser.

The headers are added in Litestar's ``before_send`` hook, which sees every response the
application sends: pages, the API, static files, SSE streams, and the error answers that
Litestar produces before any route runs (404, 405, 413).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HSTS = "max-age=31536000; includeSubDomains"


def header_set(*, production: bool) -> dict[str, str]:
    """Every security header this service sends, by name (lower case)."""
    headers = {
        "content-security-policy": CSP,
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-resource-policy": "same-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    }
    if production:
        headers["strict-transport-security"] = HSTS
    return headers


def security_headers_hook(*, production: bool) -> Callable[[Message, Scope], Awaitable[None]]:
    """A ``before_send`` hook that sets the headers on every HTTP response start."""
    encoded = header_set(production=production)

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders(message)
        for name, value in encoded.items():
            headers[name] = value

    return before_send
