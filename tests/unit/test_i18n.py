"""Every user-facing string has an Arabic translation, and the catalogs load."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from optria.web import i18n

ROOT = Path(__file__).resolve().parents[2]


def _i18n_tool():
    spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "scripts" / "i18n.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_arabic_catalog_is_complete() -> None:
    tool = _i18n_tool()
    ids = tool.used_msgids()
    assert len(ids) > 50
    assert tool.missing("ar") == []


def test_gettext_switches_language() -> None:
    token = i18n.current_lang.set("ar")
    try:
        assert i18n.gettext("Digital Twin") == "التوأم الرقمي"
        assert i18n.gettext("Industrial Black Box") == "الصندوق الأسود الصناعي"
        assert i18n.gettext("Welcome, %(name)s.", name="سارة") == "مرحبًا، سارة."
    finally:
        i18n.current_lang.reset(token)
    token = i18n.current_lang.set("en")
    try:
        assert i18n.gettext("Digital Twin") == "Digital Twin"
    finally:
        i18n.current_lang.reset(token)


def test_unknown_language_falls_back_to_arabic() -> None:
    assert i18n.pick_lang("fr", None) == "ar"
    assert i18n.pick_lang("en", None) == "en"
    assert i18n.pick_lang("en", "ar") == "ar"
