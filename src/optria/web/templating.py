"""Jinja2 environment and the ``render`` helper every page uses.

Pages render through one helper so every template gets the same context: the user, the
navigation they may see, the CSRF token, language and direction, breadcrumbs. The kit knows no
area: what the areas lend the templates (labels, presenting helpers) and the sidebar are
registered by the application shell at start-up (:func:`register_globals`, :func:`register_nav`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.utils.scope.state import ScopeState

from optria.config import PROJECT_ROOT
from optria.web import formatting, i18n

TEMPLATES_DIR = PROJECT_ROOT / "templates"


# What the areas lend every template (a role's label, an event's sentence) and the sidebar: the
# application shell registers them at start-up (optria.shell.template_globals), so the kit below
# the areas knows none of them.
_lent_globals: dict[str, Any] = {}
_nav_for: Callable[[Any], list[dict[str, Any]]] = lambda user: []


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


_DICT_NAMES = frozenset(dir(dict))


class _Environment(Environment):
    """Reads ``row.name`` of a plain dict as ``row["name"]`` straight away.

    Pages hand their rows and cards to the templates as dicts, and Jinja's ``getattr`` tries the
    attribute first: for a dict key that is an AttributeError raised and caught each time (a
    twin page of 36 cards read thousands). A name that is not an attribute of ``dict`` can only
    be found as a key, so the result is the same; ``d.items`` and the like still find the method."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_NAMES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


def build_environment() -> Environment:
    env = _Environment(
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
    env.globals["unit_text"] = formatting.unit_text
    env.globals["urlencode"] = urlencode
    env.globals.update(_lent_globals)
    return env


def register_globals(**values: Any) -> None:
    """Make ``values`` (labels, presenting helpers of the areas) globals of every template."""
    _lent_globals.update(values)
    if _env is not None:
        _env.globals.update(values)


def register_nav(nav_for: Callable[[Any], list[dict[str, Any]]]) -> None:
    """The sidebar a user sees: ``nav_for(user)`` gives its sections ``{key, title, items}``."""
    global _nav_for
    _nav_for = nav_for


_env: Environment | None = None


def environment() -> Environment:
    global _env
    if _env is None:
        _env = build_environment()
    return _env


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
        "nav": _nav_for(user),
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
