"""Rendering texts the system generated — stored as a message key with parameters — in the reader's
language, each parameter formatted for its kind and isolated from the sentence around it.

Kinds of parameter:

========  ==========================================================================
tag       a tag or point name as the source spells it (``RasTanura.CrudeUnit.P-101.Vibration``):
          left-to-right, isolated, wraps at its dots
name      a name someone set (an integration's, a tenant's): isolated, direction from its text
qty       a measured value; its unit is the ``unit`` parameter (localized: ``degC`` → °م / °C)
count     a whole number
id        a record number (``#12``)
millis    a duration in milliseconds
codes     a list of codes, each isolated
texts     a list of English msgids, each translated
text      an English msgid, translated
scope     what an optimization run covered: ``{"kind", "code", "name", "name_ar"}``
code      a code (``P-101``): left-to-right, isolated
========  ==========================================================================

A stored message that cannot be rendered (unknown key, a parameter missing) falls back to the
English text stored beside it, isolated, so an old row is never lost and never breaks a page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup, escape

from optria.web import formatting
from optria.web.i18n import current_lang
from optria.web.i18n import gettext as translate  # dynamic msgids: not literals for the extractor

log = logging.getLogger("optria.web.messages")

SCOPE_ALL = "all assets"


def isolate(text: Any, direction: str = "auto", css: str | None = None) -> Markup:
    cls = f' class="{css}"' if css else ""
    return Markup(f'<bdi dir="{direction}"{cls}>{escape("" if text is None else str(text))}</bdi>')


def _scope(value: Any) -> Markup:
    if not isinstance(value, Mapping):
        return isolate(value)
    kind, code = value.get("kind"), value.get("code")
    name = value.get("name_ar") if current_lang.get() == "ar" and value.get("name_ar") else value.get("name")
    if kind == "tenant":
        return escape(translate(SCOPE_ALL))
    if kind == "asset" and code:
        return Markup("{} — {}").format(isolate(code, "ltr", "code"), isolate(name))
    if code and name:
        return Markup("{} ({})").format(isolate(name), isolate(code, "ltr", "code"))
    return isolate(name or code or "—")


def param(kind: str, value: Any, params: Mapping[str, Any]) -> Markup:
    """One parameter rendered for its kind (see the module docstring)."""
    if kind == "tag":
        return isolate(value, "ltr", "tag")
    if kind == "code":
        return isolate(value, "ltr", "code")
    if kind == "qty":
        return formatting.qty(None if value is None else float(value), params.get("unit"))
    if kind == "texts":
        items = value if isinstance(value, (list, tuple)) else [value]
        return escape(translate(", ")).join(escape(translate(str(v))) for v in items) if items else escape("—")
    if kind == "codes":
        items = value if isinstance(value, (list, tuple)) else [value]
        return Markup(", ").join(isolate(v, "ltr", "code") for v in items) if items else escape("—")
    if kind == "millis":
        return formatting.millis(None if value is None else float(value))
    if kind == "count":
        return isolate(formatting.number_text(int(value), 0), formatting.page_dir(), "num")
    if kind == "id":
        return isolate(value, "ltr", "num")
    if kind == "text":
        return escape(translate(str(value)))
    if kind == "scope":
        return _scope(value)
    return isolate(value)


def render(msgid: str, params: Mapping[str, Any], kinds: Mapping[str, str]) -> Markup:
    """``msgid`` translated, with each parameter rendered for its kind; raises KeyError/TypeError/ValueError
    when a parameter is missing or malformed."""
    rendered = {name: param(kind, params[name], params) for name, kind in kinds.items()}
    return escape(translate(msgid)) % rendered


def stored(msg: Any, catalog: Mapping[str, tuple[str, Mapping[str, str]]], fallback: str | None) -> Markup:
    """A stored ``{"key", "params"}`` message through ``catalog``; the English ``fallback`` (isolated)
    when there is none or it cannot be rendered."""
    if isinstance(msg, Mapping) and msg.get("key") in catalog and isinstance(msg.get("params"), Mapping):
        msgid, kinds = catalog[msg["key"]]
        try:
            return render(msgid, msg["params"], kinds)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("web.message_unrenderable", extra={"key": msg.get("key"), "error": str(exc)[:200]})
    return isolate(fallback or "—")


def msgids() -> set[str]:
    """Msgids used through this module (listed for the catalog checker)."""
    return {SCOPE_ALL, ", "}
