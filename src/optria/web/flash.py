"""One-time messages across a redirect (post → redirect → get), kept in the encrypted session cookie.

A message is an English msgid plus parameters, translated when shown. ``once`` carries data
that must be shown exactly one time, such as a temporary password: it leaves the session on
the first page that pops it and is never stored anywhere else.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from optria.web import i18n

FLASH_KEY = "flash"


def push(request: Request, kind: str, message: str, *, once: dict[str, Any] | None = None, **params: Any) -> None:
    session = dict(request.session or {})
    session[FLASH_KEY] = {"kind": kind, "message": message, "params": {k: str(v) for k, v in params.items()},
                          "once": once}
    request.set_session(session)


def pop(request: Request) -> tuple[dict[str, str] | None, dict[str, Any] | None]:
    """(flash for the layout {kind, message}, the one-time data) — both None when nothing waits."""
    session = request.session or {}
    item = session.get(FLASH_KEY) if isinstance(session, dict) else None
    if not item:
        return None, None
    rest = {k: v for k, v in session.items() if k != FLASH_KEY}
    request.set_session(rest)
    message = i18n.gettext(item.get("message", ""), **item.get("params") or {})
    return {"kind": item.get("kind", "info"), "message": message}, item.get("once")
