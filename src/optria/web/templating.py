"""Jinja2 environment and the ``render`` helper every page uses.

Pages render through one helper so every template gets the same context: the user, the
navigation they may see, the CSRF token, language and direction, breadcrumbs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.utils.scope.state import ScopeState

from optria.blackbox import presenting
from optria.config import PROJECT_ROOT
from optria.identity.rbac import ROLE_LABELS, Permission, has_permission
from optria.integrations import models as integration_kinds
from optria.integrations import views as integration_views
from optria.optimization import presenting as optimization_presenting
from optria.web import formatting, i18n

TEMPLATES_DIR = PROJECT_ROOT / "templates"


@dataclass(frozen=True)
class NavItem:
    label: str          # English msgid, translated at render time
    href: str
    permission: Permission
    icon: str
    section: str = "main"


# Order is the sidebar's order. Section "platform" shows only to platform owners.
NAV: tuple[NavItem, ...] = (
    NavItem("Dashboard", "/", Permission.VIEW_DASHBOARD, "grid"),
    NavItem("Digital Twin", "/digital-twin", Permission.VIEW_TWIN, "twin"),
    NavItem("Assets", "/assets", Permission.VIEW_ASSETS, "asset"),
    NavItem("Industrial Black Box", "/blackbox", Permission.VIEW_BLACKBOX, "box"),
    NavItem("Integrations", "/integrations", Permission.VIEW_INTEGRATIONS, "plug"),
    NavItem("Optimization", "/optimization", Permission.VIEW_OPTIMIZATION, "spark"),
    NavItem("Users", "/management/users", Permission.MANAGE_USERS, "users", "management"),
    NavItem("Audit log", "/management/audit", Permission.VIEW_AUDIT, "list", "management"),
    NavItem("Platform overview", "/platform", Permission.PLATFORM_CONSOLE, "shield", "platform"),
    NavItem("Tenants", "/platform/tenants", Permission.PLATFORM_CONSOLE, "building", "platform"),
    NavItem("All users", "/platform/users", Permission.PLATFORM_CONSOLE, "users", "platform"),
    NavItem("Ingestion", "/platform/ingestion", Permission.PLATFORM_CONSOLE, "pulse", "platform"),
    NavItem("Proof of concept", "/platform/poc", Permission.PLATFORM_CONSOLE, "check", "platform"),
)
INGEST_STATE_LABELS = {
    "starting": "Starting", "connecting": "Connecting", "streaming": "Streaming", "backfilling": "Backfilling",
    "reconnecting": "Reconnecting", "error": "Error", "stopped": "Stopped", "not_running": "Not running",
}
INGEST_FLAG_LABELS = {"stale": "Stale data", "no_worker": "No ingest worker", "error": "Error",
                      "disabled": "Not streaming", "no_mappings": "No mapped tags"}
# Why the ingest service refused a value (ingest health, ingest_signal_status.last_reason).
REJECT_REASON_LABELS = {
    "unknown_signal": "Not a mapped tag", "source_error": "Error reported by the source",
    "not_a_number": "Not a number", "nan_or_infinite": "Not a finite number", "missing_value": "No value",
    "bad_timestamp": "Unreadable timestamp", "timestamp_out_of_range": "Timestamp out of range",
    "malformed_value": "Malformed value", "monitored_item_failed": "The server refused to monitor the tag",
    "older_than_retention": "Older than the retention period", "write_refused": "Refused by the database",
}
NAV_SECTIONS = {"main": "", "management": "Management", "platform": "Platform"}


def _gauge_at(percent: float | int | None) -> str:
    """A position along a gauge, 0 … 100, for ``data-at`` (optria.css places ``[data-at="N"]`` at N%):
    the Content-Security-Policy allows no ``style`` attribute."""
    try:
        value = float(percent) if percent is not None else 0.0
    except (TypeError, ValueError):
        value = 0.0
    value = 0.0 if value != value else value  # NaN
    return str(int(round(min(100.0, max(0.0, value)))))


def _escaped_gettext(message: str) -> Markup:
    """``_()`` in templates: the translation, escaped.

    Jinja marks what ``_()`` returns as safe markup, so an unescaped translation would let any
    text that reaches ``_()`` — a label that falls back to a stored value, say — into the page
    as HTML. Escaping here makes ``_()`` as safe as ``{{ value }}`` whatever it is given;
    parameters (``_("Run #%(id)s", id=x)``) are escaped by Jinja as before.
    """
    return escape(i18n.gettext(message))


def _escaped_ngettext(singular: str, plural: str, n: int) -> Markup:
    return escape(i18n.translations(i18n.current_lang.get()).ngettext(singular, plural, n))


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_escaped_gettext, _escaped_ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(formatting.filters())
    env.filters["gauge_at"] = _gauge_at
    env.globals["zone_label"] = formatting.zone_label
    env.globals["event_text"] = presenting.event_text
    env.globals["incident_title"] = presenting.incident_title
    env.globals["unit_text"] = formatting.unit_text
    env.globals["urlencode"] = urlencode
    env.globals["role_label"] = lambda role: ROLE_LABELS.get(role, role)
    env.globals["state_label"] = lambda state: INGEST_STATE_LABELS.get(state, state)
    env.globals["flag_label"] = lambda flag: INGEST_FLAG_LABELS.get(flag, flag)
    env.globals["reject_label"] = lambda reason: REJECT_REASON_LABELS.get(reason, reason)
    env.globals["kind_label"] = lambda kind: integration_kinds.KIND_LABELS.get(kind, kind)
    env.globals["test_text"] = integration_views.test_text
    env.globals["action_text"] = integration_views.action_text
    env.globals["scope_text"] = optimization_presenting.scope_text
    return env


_env: Environment | None = None


def environment() -> Environment:
    global _env
    if _env is None:
        _env = build_environment()
    return _env


def nav_for(user: Any) -> list[dict[str, Any]]:
    if user is None:
        return []
    sections: dict[str, list[NavItem]] = {}
    for item in NAV:
        if has_permission(user.role, item.permission):
            sections.setdefault(item.section, []).append(item)
    return [{"key": key, "title": NAV_SECTIONS[key], "items": items} for key, items in sections.items()]


def csrf_token(request: Request) -> str:
    return ScopeState.from_scope(request.scope).csrf_token or ""


def crumb_label(label: str) -> str:
    """A breadcrumb's text: a literal label (an English msgid) is translated; a name a user set
    (wrapped in ``i18n.verbatim``) is shown as it is. The template escapes both."""
    return i18n.gettext(label)


def page_context(request: Request, **context: Any) -> dict[str, Any]:
    user = request.scope.get("user")
    lang = i18n.current_lang.get()
    return {
        "request": request,
        "user": user,
        "nav": nav_for(user),
        "current_path": request.url.path,
        "csrf_token": csrf_token(request),
        "lang": lang,
        "dir": i18n.LANGUAGES[lang]["dir"],
        "languages": i18n.LANGUAGES,
        "breadcrumbs": [(crumb_label(label), href) for label, href in context.pop("breadcrumbs", [])],
        "flash": context.pop("flash", None),
        "now": datetime.now(timezone.utc),
        "zone": formatting.current_zone.get(),
        **context,
    }


def render(request: Request, template: str, *, status_code: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> Response:
    html = environment().get_template(template).render(page_context(request, **context))
    return Response(content=html, media_type=MediaType.HTML, status_code=status_code, headers=headers)
