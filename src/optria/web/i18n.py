"""Translations: gettext catalogs (``web/locale/<lang>/LC_MESSAGES/messages.po``), Arabic by default.

Message ids are English; the Arabic catalog is complete (a test extracts every string
from templates and code and fails on a missing translation). Catalogs are compiled in
memory at start-up, so no build step produces ``.mo`` files.
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"ar": {"name": "العربية", "dir": "rtl"}, "en": {"name": "English", "dir": "ltr"}}
DEFAULT_LANG = "ar"

current_lang: ContextVar[str] = ContextVar("optria_lang", default=DEFAULT_LANG)


@lru_cache(maxsize=None)
def translations(lang: str) -> NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


class Verbatim(str):
    """Text a user or a source set (an asset's name, say): shown as it is, never looked up in a catalog."""


def verbatim(text: str) -> Verbatim:
    return Verbatim(text)


def gettext(message: str, **params: object) -> str:
    if isinstance(message, Verbatim):
        return str(message)
    text = translations(current_lang.get()).gettext(message)
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, **params: object) -> str:
    text = translations(current_lang.get()).ngettext(singular, plural, n)
    params.setdefault("num", n)
    return text % params


_ = gettext


def pick_lang(cookie: str | None, query: str | None = None, accept: str | None = None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate  # type: ignore[return-value]
    return DEFAULT_LANG
